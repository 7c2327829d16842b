package cli

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v4"
)

// dataCommandArgs are the arguments each data command runs with against
// the fake manager in TestEveryCommandHonoursOrRefusesOutput. A command of
// dataCommands missing here fails the test: a new one must say how it is
// run, and so is proven to honour -o.
var dataCommandArgs = map[string][]string{
	"berth ps":              {"ps"},
	"berth ls":              {"ls"},
	"berth deployments":     {"deployments"},
	"berth inspect":         {"inspect", "web"},
	"berth events":          {"events"},
	"berth config":          {"config", "--berth"},
	"berth up":              {"up", "--dry-run"},
	"berth service ls":      {"service", "ls"},
	"berth node ls":         {"node", "ls"},
	"berth node inspect":    {"node", "inspect", "laptop"},
	"berth image ls":        {"image", "ls"},
	"berth images":          {"images"},
	"berth machine ls":      nil, // needs a cluster's machine store: machine_test.go
	"berth machine inspect": nil, // idem
	"berth cluster ls":      {"cluster", "ls"},
	"berth context ls":      {"context", "ls"},
	"berth server members":  {"server", "members"},
	"berth network ls":      nil, // needs the network routes' fake: network_test.go
	"berth network inspect": nil, // idem
	"berth volume ls":       nil, // idem
	"berth volume inspect":  nil, // idem
}

// TestEveryCommandHonoursOrRefusesOutput walks the whole command tree:
// every command either prints one JSON and one YAML document with -o
// (the same data in both), or refuses -o with a sentence that says so.
func TestEveryCommandHonoursOrRefusesOutput(t *testing.T) {
	f, url := newFakeManager(t)
	seedApp(t, f, url)
	url = withRoutes(t, f, map[string]http.HandlerFunc{
		"GET " + api.PathImages: func(w http.ResponseWriter, _ *http.Request) {
			f.reply(w, 200, []api.Image{{Ref: "shop/web@sha256:ab12", Repo: "shop/web", Digest: "sha256:ab12", App: "hello"}})
		},
		"GET " + api.PathNode: func(w http.ResponseWriter, r *http.Request) {
			f.reply(w, 200, f.nodes[0])
		},
	})
	var walk func(c *cobra.Command)
	var paths []string
	validArg := map[string]string{}
	walk = func(c *cobra.Command) {
		if c.Runnable() && c.HasParent() {
			paths = append(paths, c.CommandPath())
			validArg[c.CommandPath()] = "x"
			if len(c.ValidArgs) > 0 {
				validArg[c.CommandPath()] = c.ValidArgs[0]
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand(newHarness(t).e))
	if len(paths) < 30 {
		t.Fatalf("walked only %d commands: %v", len(paths), paths)
	}
	for path := range dataCommands {
		if !slices.Contains(paths, path) {
			t.Errorf("dataCommands names %q, which is not a command", path)
		}
	}
	for _, path := range paths {
		t.Run(strings.ReplaceAll(path, " ", "_"), func(t *testing.T) {
			words := strings.Fields(path)[1:]
			if dataCommands[path] {
				args, ok := dataCommandArgs[path]
				if !ok {
					t.Fatalf("%s prints data: add how to run it to dataCommandArgs", path)
				}
				if args == nil {
					t.Skip("run by its own test")
				}
				var docs [2]any
				for i, format := range []string{"json", "yaml"} {
					h := newHarness(t)
					if code := h.run(t, append(args, "-o", format, "--addr", url)...); code != 0 {
						t.Fatalf("-o %s: exit %d: %s", format, code, h.errOut)
					}
					if err := decodeDocs(format, h.out.String(), &docs[i]); err != nil {
						t.Fatalf("-o %s: %v\n%s", format, err, h.out)
					}
				}
				if !reflect.DeepEqual(docs[0], docs[1]) {
					t.Errorf("-o json and -o yaml differ:\n%v\n%v", docs[0], docs[1])
				}
				return
			}
			// Arguments after -o, so a verb that takes the rest of the
			// line as a command (exec, run) still parses it; as many
			// as its Args wants.
			for n := 0; n <= 3; n++ {
				h := newHarness(t)
				args := append(append(slices.Clone(words), "-o", "json", "--addr", url), slices.Repeat([]string{validArg[path]}, n)...)
				code := h.run(t, args...)
				if strings.Contains(h.errOut.String(), "prints no data, so -o json does not apply to it; drop it") {
					if code != 1 || h.out.String() != "" {
						t.Errorf("refused with exit %d and stdout %q", code, h.out)
					}
					return
				}
			}
			t.Errorf("%s neither prints data (add it to dataCommands) nor refuses -o json", path)
		})
	}
}

// withRoutes serves f with extra routes the fake lacks, for this test.
func withRoutes(t *testing.T, f *fakeManager, routes map[string]http.HandlerFunc) string {
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	mux.Handle("/", f.handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// decodeDocs decodes the JSON or YAML documents of s into a generic value
// (the one document, or a list of a stream's), with JSON's numbers as YAML
// decodes them, so the two compare.
func decodeDocs(format, s string, v *any) error {
	var docs []any
	if format == "yaml" {
		dec := yaml.NewDecoder(strings.NewReader(s))
		for {
			var d any
			if err := dec.Decode(&d); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return err
			}
			docs = append(docs, normalize(d))
		}
	} else {
		dec := json.NewDecoder(strings.NewReader(s))
		for dec.More() {
			var d any
			if err := dec.Decode(&d); err != nil {
				return err
			}
			docs = append(docs, normalize(d))
		}
	}
	if len(docs) == 1 {
		*v = docs[0]
		return nil
	}
	*v = docs
	return nil
}

// normalize makes JSON's float64s and YAML's ints one kind.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	case int:
		return float64(x)
	case uint64:
		return float64(x)
	case int64:
		return float64(x)
	}
	return v
}

// seedApp deploys hello on the fake manager, with events and deployments.
func seedApp(t *testing.T, f *fakeManager, url string) {
	t.Helper()
	h := newHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("up: exit %d: %s", code, h.errOut)
	}
	f.mu.Lock()
	f.eventLog = []api.Event{{Index: 3, Kind: "task", Action: "created", ID: "t1", App: "hello"}, {Index: 4, Kind: "task", Action: "updated", ID: "t1", App: "hello", State: "running"}}
	f.deployments = func(a *types.App) []*api.Deployment {
		return []*api.Deployment{{ID: "hello/web/1", App: "hello", Service: "web", ToVersion: 1, State: api.DeploymentSucceeded, Delay: time.Second}}
	}
	f.mu.Unlock()
}

// TestJSONAliasRefusedByName: the refusal names the flag the user typed.
func TestJSONAliasRefusedByName(t *testing.T) {
	h := newHarness(t)
	if code := h.run(t, "down", "--json", "-p", "x"); code != 1 || !strings.Contains(h.errOut.String(), "berth down prints no data, so --json does not apply to it; drop it") {
		t.Errorf("exit %d: %s", code, h.errOut)
	}
}
