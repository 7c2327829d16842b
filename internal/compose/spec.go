package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"go.yaml.in/yaml/v4"

	"github.com/berth-dev/berth/internal/types"
)

// RenderJSON writes app as `berth config --berth --format json` shows it:
// what Render writes, as one JSON document, with the same durations as
// the user wrote them ("1m30s", not nanoseconds).
func RenderJSON(w io.Writer, app *types.App) error {
	raw, err := SpecJSON(renderable(app))
	if err != nil {
		return fmt.Errorf("render app %s: %w", app.Name, err)
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return fmt.Errorf("render app %s: %w", app.Name, err)
	}
	b.WriteByte('\n')
	_, err = w.Write(b.Bytes())
	return err
}

// SpecJSON is v (a service or an app of internal/types) as JSON, with its
// durations written as Compose writes them, for the CLI's stable output.
func SpecJSON(v any) (json.RawMessage, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	readableDurations(&doc)
	var b bytes.Buffer
	if err := nodeJSON(&b, &doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// nodeJSON writes a yaml.Node decoded from JSON back as JSON: in the same
// order, with the scalars readableDurations rewrote as strings.
func nodeJSON(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			b.WriteString("null")
			return nil
		}
		return nodeJSON(b, n.Content[0])
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			k, err := json.Marshal(n.Content[i].Value)
			if err != nil {
				return err
			}
			b.Write(k)
			b.WriteByte(':')
			if err := nodeJSON(b, n.Content[i+1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := nodeJSON(b, c); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int", "!!float", "!!bool", "!!null":
			b.WriteString(n.Value)
		default:
			s, err := json.Marshal(n.Value)
			if err != nil {
				return err
			}
			b.Write(s)
		}
	default:
		return fmt.Errorf("unexpected YAML node kind %v", n.Kind)
	}
	return nil
}

// renderable is the part of app that config shows: no bookkeeping, no
// secret content.
func renderable(app *types.App) renderedApp {
	return renderedApp{
		Name:     app.Name,
		Services: app.Services,
		Networks: app.Networks,
		Volumes:  app.Volumes,
		Secrets:  renderFiles(app.Secrets),
		Configs:  renderFiles(app.Configs),
	}
}

// RenderModel writes the resolved Compose model (interpolated, merged,
// profiles applied, defaults filled in) as `docker compose config` does:
// YAML, or JSON when format is "json". It loads the files itself: the model
// is compose-go's, not berth's converted app.
func RenderModel(ctx context.Context, w io.Writer, o Options, format string) error {
	project, problems, err := loadProject(ctx, o)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return Errors(sortErrors(problems))
	}
	var out []byte
	if format == "json" {
		raw, err := project.MarshalJSON()
		if err != nil {
			return fmt.Errorf("render the Compose model: %w", err)
		}
		var b bytes.Buffer
		if err := json.Indent(&b, raw, "", "  "); err != nil {
			return fmt.Errorf("render the Compose model: %w", err)
		}
		out = append(b.Bytes(), '\n')
	} else if out, err = project.MarshalYAML(); err != nil {
		return fmt.Errorf("render the Compose model: %w", err)
	}
	_, err = w.Write(out)
	return err
}
