package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
)

// TestImageLs: the table shows each image's repository, short digests,
// size, copies, users; --json gives the API's records.
func TestImageLs(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	images := []api.Image{{
		Ref: "shop/web@sha256:" + hex, Digest: "sha256:" + hex, Repo: "shop/web", App: "shop", Service: "web",
		Config: "sha256:" + strings.Repeat("cd", 32), Size: 3 << 20,
		PushedAt: time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC), Replicas: []string{"m1", "m2", "m3"},
		Services: []string{"shop/web"}, Nodes: []string{"a1", "a2"},
	}, {
		Ref: "shop/old@sha256:" + hex, Digest: "sha256:" + hex, Repo: "shop/old", Config: "sha256:" + hex,
		Size: 512, PushedAt: time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC), Replicas: []string{"m1"},
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != api.PathImages {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(images)
	}))
	t.Cleanup(srv.Close)

	h := newHarness(t)
	if code := h.run(t, "--addr", srv.URL, "image", "ls"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(h.out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "REPOSITORY") {
		t.Fatalf("table:\n%s", h.out.String())
	}
	for _, want := range []string{"shop/web", "abababababab", "cdcdcdcdcdcd", "3MiB", "1h ago", "3", "shop/web", "a1,a2"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	if f := strings.Fields(lines[2]); f[len(f)-1] != "-" || f[len(f)-2] != "-" {
		t.Errorf("an unused image's row %q: want - for services and nodes", lines[2])
	}

	h = newHarness(t)
	if code := h.run(t, "--addr", srv.URL, "--json", "image", "ls"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut.String())
	}
	var got []api.Image
	if err := json.Unmarshal([]byte(h.out.String()), &got); err != nil || len(got) != 2 || got[0].Ref != images[0].Ref {
		t.Fatalf("--json: %v %s", err, h.out.String())
	}
}

func TestRegistryMaxSizeFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"10GiB", 10 << 30, true},
		{"500m", 500 << 20, true},
		{"1073741824", 1 << 30, true},
		{"", 0, true},
		{"0", 0, false},
		{"lots", 0, false},
		{"-1g", 0, false},
	} {
		o := serverOptions{registryMax: tc.in}
		got, err := o.registryMaxBytes()
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: %d, %v", tc.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--registry-max-size") {
			t.Errorf("%q: the error does not name the flag: %v", tc.in, err)
		}
		if cerr := o.check(); (cerr == nil) != tc.ok {
			t.Errorf("%q: check() = %v", tc.in, cerr)
		}
	}
}
