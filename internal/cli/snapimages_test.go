package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/api"
)

// TestSnapshotImagesListed: save lists the apps' images on stderr, asks
// the manager for them with --with-images, and restore lists those the
// cluster lacks with how to get them back.
func TestSnapshotImagesListed(t *testing.T) {
	needs := []api.SnapshotImage{
		{App: "shop", Service: "web", Ref: "shop/web@sha256:aa", Cluster: true, Size: 3 << 20, Present: true, Build: true},
		{App: "shop", Service: "cache", Ref: "redis:7", Present: true},
		{App: "shop", Service: "tool", Ref: "shop/tool@sha256:bb", Cluster: true},
	}
	var query string
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathSnapshotImages, func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(needs) })
	mux.HandleFunc("GET "+api.PathSnapshot, func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		_, _ = w.Write([]byte("SNAP"))
	})
	mux.HandleFunc("POST "+api.PathSnapshot, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		missing := []api.SnapshotImage{needs[0], needs[1], needs[2]}
		missing[0].Present = false
		_ = json.NewEncoder(w).Encode(api.SnapshotRestored{Images: missing})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	dir := t.TempDir()

	tests := []struct {
		name      string
		args      []string
		wantQuery string
		want      []string
		not       []string
	}{
		{"save", []string{"snapshot", "save", filepath.Join(dir, "a.snap")}, "",
			[]string{"shop/web", "shop/web@sha256:aa", "3MiB", "--with-images carries it", "redis:7", "pulled by the nodes", "missing: no manager holds it"}, nil},
		{"save with images", []string{"snapshot", "save", "--with-images", filepath.Join(dir, "b.snap")}, "images=true",
			[]string{"in this snapshot"}, []string{"--with-images carries it"}},
		{"restore", []string{"snapshot", "restore", filepath.Join(dir, "a.snap")}, "",
			[]string{"the cluster lacks", "shop/web@sha256:aa", "it builds the image again", "shop/tool@sha256:bb", "pushes the local image again", "--with-images"}, []string{"redis:7"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			query = ""
			h := newHarness(t)
			if code := h.run(t, append(tc.args, "--addr", srv.URL)...); code != 0 {
				t.Fatalf("exit %d: %s", code, h.errOut)
			}
			if query != tc.wantQuery {
				t.Errorf("asked for the snapshot with %q, want %q", query, tc.wantQuery)
			}
			for _, w := range tc.want {
				if !strings.Contains(h.errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, h.errOut)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(h.errOut.String(), w) {
					t.Errorf("stderr has %q:\n%s", w, h.errOut)
				}
			}
		})
	}
	if st, err := os.Stat(filepath.Join(dir, "b.snap")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the snapshot with images: %v %v, want mode 0600", st, err)
	}
}
