package compose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// compose-go checks the files against the Compose schema but reports one
// error, picked from the validator's causes by depth: a file with three
// typos costs three runs, and which typo comes first changes from run to
// run. schemaErrors finds them all, in a stable order.

var (
	composeSchema     *jsonschema.Schema
	composeSchemaErr  error
	composeSchemaOnce sync.Once
	// schemaCompiler compiles the subschemas a suggestion needs; guarded
	// by compilerMu, as a Compiler is not safe for concurrent use.
	schemaCompiler *jsonschema.Compiler
	compilerMu     sync.Mutex
)

// compiledSchema is compose-go's own schema (one set of rules), compiled
// once.
func compiledSchema() (*jsonschema.Schema, error) {
	composeSchemaOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema.Schema))
		if err != nil {
			composeSchemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("compose-spec.json", doc); err != nil {
			composeSchemaErr = err
			return
		}
		c.RegisterFormat(&jsonschema.Format{Name: "duration", Validate: func(any) error { return nil }})
		composeSchema, composeSchemaErr = c.Compile("compose-spec.json")
		schemaCompiler = c
	})
	return composeSchema, composeSchemaErr
}

// schemaErrors loads the model again without compose-go's validation (the
// files merged, interpolated and normalised as compose-go sees them) and
// returns every place it breaks the schema, sorted by key path. It returns
// nil when the model cannot be built or breaks nothing; the caller then
// keeps compose-go's own error.
func schemaErrors(ctx context.Context, o Options) (errs []error) {
	defer func() {
		if recover() != nil {
			errs = nil // a shape the transforms do not expect: compose-go's error stands
		}
	}()
	po, err := projectOptions(o, cli.WithLoadOptions(loader.WithSkipValidation))
	if err != nil {
		return nil
	}
	model, err := po.LoadModel(ctx)
	if err != nil {
		return nil
	}
	return validateModel(model)
}

// validateModel checks a model (plain JSON values) against the schema.
func validateModel(model map[string]any) []error {
	s, err := compiledSchema()
	if err != nil {
		return nil
	}
	raw, err := json.Marshal(model)
	if err != nil {
		return nil
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(s.Validate(doc), &verr) {
		return nil
	}
	return sortedKeyErrors(doc, dropUnevaluated(leafErrors(verr)))
}

// dropUnevaluated drops the "unevaluated property" errors of keys that have
// errors of their own below them: the schema's unevaluatedProperties counts a
// key whose subschema failed as unknown, which it is not.
func dropUnevaluated(leaves []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	out := leaves[:0:0]
	for _, l := range leaves {
		if _, ok := l.ErrorKind.(*kind.FalseSchema); ok && hasErrorWithin(leaves, l) {
			continue
		}
		out = append(out, l)
	}
	return out
}

func hasErrorWithin(leaves []*jsonschema.ValidationError, at *jsonschema.ValidationError) bool {
	for _, l := range leaves {
		if l == at || len(l.InstanceLocation) < len(at.InstanceLocation) {
			continue
		}
		if _, ok := l.ErrorKind.(*kind.FalseSchema); ok && len(l.InstanceLocation) == len(at.InstanceLocation) {
			continue
		}
		if slices.Equal(l.InstanceLocation[:len(at.InstanceLocation)], at.InstanceLocation) {
			return true
		}
	}
	return false
}

// leafErrors flattens the validator's tree: each failing property is its
// own error, and of the alternatives of a oneOf or anyOf only the one that
// got furthest into the value counts (a port is a number, a string or a
// mapping; the user meant one of them).
func leafErrors(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	switch e.ErrorKind.(type) {
	case *kind.OneOf, *kind.AnyOf:
		return []*jsonschema.ValidationError{mostSpecific(e)}
	}
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leafErrors(c)...)
	}
	return out
}

// mostSpecific is the deepest leaf below e, ties broken by the message so
// the choice does not depend on the validator's order.
func mostSpecific(e *jsonschema.ValidationError) *jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return e
	}
	var best *jsonschema.ValidationError
	for _, c := range e.Causes {
		c = mostSpecific(c)
		switch {
		case best == nil, depth(c) > depth(best):
			best = c
		case depth(c) == depth(best) && schemaMessage(c) < schemaMessage(best):
			best = c
		}
	}
	return best
}

func depth(e *jsonschema.ValidationError) int {
	if _, ok := e.ErrorKind.(*kind.AdditionalProperties); ok {
		return len(e.InstanceLocation) + 1
	}
	return len(e.InstanceLocation)
}

// sortedKeyErrors turns leaves into keyErrors, one per key path and
// message, sorted by path. An unknown key is named by its own path.
func sortedKeyErrors(doc any, leaves []*jsonschema.ValidationError) []error {
	type entry struct{ path, msg string }
	var entries []entry
	for _, l := range leaves {
		path := displayLocation(doc, l.InstanceLocation)
		switch k := l.ErrorKind.(type) {
		case *kind.AdditionalProperties:
			for _, p := range k.Properties {
				entries = append(entries, entry{strings.TrimPrefix(path+"."+p, "."), unknownKeyMessage(l.SchemaURL, p)})
			}
			continue
		case *kind.FalseSchema:
			// unevaluatedProperties or additionalProperties: false, on
			// the key itself; the schema of its parent lists the keys.
			parent := l.SchemaURL[:max(strings.LastIndex(l.SchemaURL, "/"), 0)]
			key := l.InstanceLocation[len(l.InstanceLocation)-1:]
			if len(key) == 1 {
				entries = append(entries, entry{path, unknownKeyMessage(parent, key[0])})
				continue
			}
		}
		entries = append(entries, entry{path, schemaMessage(l)})
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].path != entries[j].path {
			return entries[i].path < entries[j].path
		}
		return entries[i].msg < entries[j].msg
	})
	entries = slices.Compact(entries)
	out := make([]error, 0, len(entries))
	for _, e := range entries {
		out = append(out, &keyError{path: e.path, err: errors.New(e.msg)})
	}
	return out
}

// displayLocation writes a location as the other errors do:
// services.web.ports[0], list indexes in brackets.
func displayLocation(doc any, loc []string) string {
	var b strings.Builder
	for _, seg := range loc {
		switch v := doc.(type) {
		case []any:
			b.WriteString("[" + seg + "]")
			var i int
			if _, err := fmt.Sscan(seg, &i); err == nil && i >= 0 && i < len(v) {
				doc = v[i]
			}
			continue
		case map[string]any:
			doc = v[seg]
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

const msgUnknownKey = "not a Compose key; check its spelling"

var printer = message.NewPrinter(language.English)

// schemaMessage says what is wrong at the error's key, in words a Compose
// user knows.
func schemaMessage(e *jsonschema.ValidationError) string {
	switch k := e.ErrorKind.(type) {
	case *kind.FalseSchema:
		return msgUnknownKey
	case *kind.Type:
		want := humanTypes(k.Want)
		if len(want) == 0 {
			break
		}
		article := "a "
		if strings.ContainsRune("aeiou", rune(want[0][0])) {
			article = "an "
		}
		return "must be " + article + strings.Join(want, " or ")
	}
	return e.ErrorKind.LocalizedString(printer)
}

func humanTypes(want []string) []string {
	out := make([]string, len(want))
	for i, w := range want {
		if w == "object" {
			w = "mapping"
		}
		out[i] = w
	}
	sort.Strings(out)
	return out
}
