package compose

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWalkTree(t *testing.T) {
	tests := []struct {
		name string
		tree string // JSON of a project
		want []string
	}{
		{
			name: "honoured keys and empty values are not reported",
			tree: `{"name":"p","services":{"web":{"image":"x","command":null,"pull_policy":"","privileged":false,"deploy":{"resources":{},"placement":{}}}}}`,
		},
		{
			name: "unhonoured keys are reported at their own path",
			tree: `{"services":{"web":{"image":"x","pull_policy":"weekly","deploy":{"resources":{"reservations":{"devices":[{"count":1}]}}}}}}`,
			want: []string{"services.web.deploy.resources.reservations.devices", "services.web.pull_policy"},
		},
		{
			name: "list elements are named by index",
			tree: `{"services":{"web":{"ports":[{"target":80,"mode":"ingress"},{"target":81,"app_protocol":"http"}]}}}`,
			want: []string{"services.web.ports[1].app_protocol"},
		},
		{
			name: "a value-restricted key is reported for any other value",
			tree: `{"services":{"web":{"pull_policy":"weekly"}}}`,
			want: []string{"services.web.pull_policy"},
		},
		{
			name: "a pull_policy berth honours is not reported",
			tree: `{"services":{"a":{"pull_policy":"always"},"b":{"pull_policy":"missing"},"c":{"pull_policy":"never"},"d":{"pull_policy":"build"}}}`,
		},
		{
			name: "a container of empty things is empty",
			tree: `{"networks":{"n":{"ipam":{"config":[],"options":{}}}},"services":{"a":{"ulimits":{}}}}`,
		},
		{
			name: "unknown top-level sections are reported",
			tree: `{"services":{},"models":{"m":{"model":"ai/x"}}}`,
			want: []string{"models"},
		},
		{
			name: "user-chosen names match the wildcard",
			tree: `{"services":{"any-name":{"networks":{"front":{"aliases":["a"],"ipv4_address":"10.0.0.2"},"back":null}}}}`,
			want: []string{"services.any-name.networks.front.ipv4_address"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tree any
			if err := json.Unmarshal([]byte(tt.tree), &tree); err != nil {
				t.Fatal(err)
			}
			var got []string
			walker{report: func(p string) { got = append(got, p) }}.walk(nil, nil, tree)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// A malformed entry in the honoured table would never match, and berth
// would report a key it actually reads.
func TestHonouredPathsAreWellFormed(t *testing.T) {
	roots := map[string]bool{"services": true, "networks": true, "volumes": true, "secrets": true, "configs": true}
	seen := map[string]bool{}
	for _, h := range honouredPaths {
		path := strings.Join(h.segs, ".")
		if seen[path+"="+h.only] {
			t.Errorf("%s listed twice", path)
		}
		seen[path+"="+h.only] = true
		if path == "name" {
			continue
		}
		if !roots[h.segs[0]] || len(h.segs) < 3 || h.segs[1] != "*" {
			t.Errorf("%s: want <section>.*.<key>", path)
		}
	}
}

// The kitchen-sink case must use every key berth honours (and so prove its
// conversion in the golden file), except the ones that only lead to errors
// and the ones compose-go consumes.
func TestKitchenSinkCoversHonouredKeys(t *testing.T) {
	exempt := map[string]bool{
		"secrets.*.external": true, "configs.*.external": true, // errors
		"services.*.extends": true, // compose-go merges it away
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "kitchen_sink"))
	if err != nil {
		t.Fatal(err)
	}
	project, problems, err := loadProject(context.Background(), loadCaseOptions(t, dir))
	if err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	tree, err := projectTree(project)
	if err != nil {
		t.Fatal(err)
	}
	hit := map[int]bool{}
	walker{
		report:  func(p string) { t.Errorf("kitchen sink uses unhonoured key %s", p) },
		covered: func(i int) { hit[i] = true },
	}.walk(nil, nil, tree)
	for i, h := range honoured {
		if !hit[i] && !exempt[h.path] {
			t.Errorf("kitchen sink does not use honoured key %s (%q)", h.path, h.only)
		}
	}
}
