package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v4"
)

// The structured formats of -o (kubectl's): one document on stdout, JSON
// or YAML, from the same value, so that `-o json` and `-o yaml` always
// carry the same fields under the same names.
const (
	outputJSON = "json"
	outputYAML = "yaml"
)

// dataCommands are the commands that print data, and so honour -o
// json|yaml (and its alias --json). Every other command refuses -o with a
// sentence rather than ignoring it: a script asking for JSON from a verb
// that prints none must learn so (TestEveryCommandHonoursOrRefusesOutput
// walks the whole tree, so a new command cannot skip the choice).
var dataCommands = map[string]bool{
	"berth ps":              true,
	"berth ls":              true,
	"berth deployments":     true,
	"berth inspect":         true,
	"berth events":          true,
	"berth config":          true,
	"berth up":              true, // up --dry-run prints the plan
	"berth service ls":      true,
	"berth node ls":         true,
	"berth node inspect":    true,
	"berth image ls":        true,
	"berth machine ls":      true,
	"berth machine inspect": true,
	"berth cluster ls":      true,
	"berth context ls":      true,
	"berth server members":  true,
	"berth network ls":      true,
	"berth network inspect": true,
	"berth volume ls":       true,
	"berth volume inspect":  true,
}

// checkOutput validates -o/--json before a command runs: a known format,
// no two that disagree, and a command that prints data.
func (g *globalOptions) checkOutput(cmd *cobra.Command) error {
	switch g.output {
	case "", outputJSON, outputYAML:
	default:
		return fmt.Errorf("-o takes json or yaml, not %q", g.output)
	}
	flag := "-o " + g.output
	if g.json {
		if g.output == outputYAML {
			return fmt.Errorf("--json and -o yaml ask for two formats; give one")
		}
		g.output, flag = outputJSON, "--json" // --json is -o json's alias
	}
	if g.output != "" && !dataCommands[cmd.CommandPath()] {
		return fmt.Errorf("%s prints no data, so %s does not apply to it; drop it (list and inspect commands take it)", cmd.CommandPath(), flag)
	}
	return nil
}

// structured reports whether the user asked for -o json|yaml (or --json).
func (e *env) structured() bool { return e.global.output != "" }

// render writes v as the document -o asked for. A nil slice is written as
// an empty one, so a script can always decode a list.
func (e *env) render(v any) error {
	return renderAs(e.stdout, e.global.output, v)
}

func renderAs(w io.Writer, format string, v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
		v = reflect.MakeSlice(rv.Type(), 0, 0).Interface()
	}
	switch format {
	case outputYAML:
		return writeYAML(w, v)
	default:
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false) // "8080->80/tcp" as written, as docker compose does
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
}

// writeYAML writes v as YAML under its JSON names, as kubectl does: the
// JSON, decoded into a yaml.Node (which keeps the field order a map would
// lose), in block style.
func writeYAML(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("render YAML: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("render YAML: %w", err)
	}
	plainStyle(&doc)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("render YAML: %w", err)
	}
	return enc.Close()
}

// plainStyle drops the flow style and quotes the JSON source carried; the
// encoder quotes again the strings that need it ("true", "1").
func plainStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plainStyle(c)
	}
}

// renderItem writes one item of a stream (berth events -f): a stream is
// not one document, so JSON is one object a line, and YAML one document
// each, after a "---".
func (e *env) renderItem(v any) error {
	if e.global.output == outputYAML {
		if _, err := io.WriteString(e.stdout, "---\n"); err != nil {
			return err
		}
		return writeYAML(e.stdout, v)
	}
	return writeJSONLines(e.stdout, []any{v})
}

// writeJSON renders a list as -o asked (it predates -o, when every data
// command printed JSON only).
func writeJSON[T any](e *env, v []T) error { return e.render(v) }

// writeJSONLines writes each element of v as one compact JSON object a
// line, as docker compose --format json does (ps, ls).
func writeJSONLines[T any](w io.Writer, v []T) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, x := range v {
		if err := enc.Encode(x); err != nil {
			return err
		}
	}
	return nil
}

// formatKind is what a --format value names: docker's "table", "json",
// or a Go template ("{{.Name}}"; "table {{.Name}}" adds a header row).
type formatKind int

const (
	formatTable formatKind = iota
	formatJSON
	formatTemplate
)

func parseFormat(s string) (formatKind, error) {
	switch strings.TrimSpace(s) {
	case "", "table":
		return formatTable, nil
	case "json":
		return formatJSON, nil
	}
	if strings.Contains(s, "{{") {
		return formatTemplate, nil
	}
	return 0, fmt.Errorf("--format takes table, json or a Go template such as '{{.Name}}', not %q", s)
}

// formatAndOutput refuses --format together with -o: both choose the
// output, and they would disagree.
func (e *env) formatAndOutput(format string) error {
	if format != "" && e.structured() {
		return fmt.Errorf("--format and -o %s both choose the output; give one", e.global.output)
	}
	return nil
}

// writeTemplate executes a docker --format Go template once per item, a
// line each. "table TEMPLATE" aligns the columns and heads them with the
// fields' names in capitals, as docker does.
func writeTemplate[T any](w io.Writer, format string, items []T) error {
	text, table := strings.CutPrefix(format, "table ")
	tmpl, err := template.New("format").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		out = tw
		var zero T
		header := map[string]string{}
		rt := reflect.TypeOf(zero)
		for i := range rt.NumField() {
			header[rt.Field(i).Name] = strings.ToUpper(rt.Field(i).Name)
		}
		if err := tmpl.Execute(out, header); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Fprintln(out)
	}
	for _, it := range items {
		if err := tmpl.Execute(out, it); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Fprintln(out)
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// templateFuncs are docker's template functions that scripts use most.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"split": strings.Split,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
}
