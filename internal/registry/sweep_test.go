package registry

import (
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// age makes every file of the registry look written at t.
func age(t *testing.T, dir string, at time.Time) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(path, at, at)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t, 0)
	keptManifest, kept := putImage(t, r, "app/kept", "shared layer", "kept layer")
	goneManifest, gone := putImage(t, r, "app/gone", "shared layer", "gone layer")
	now := time.Now()
	age(t, r.Dir(), now.Add(-time.Hour))
	// A young unreferenced image: a push whose record is not there yet.
	youngManifest, young := putImage(t, r, "app/young", "young layer")

	keep := map[string]bool{keptManifest: true}
	for _, d := range kept {
		keep[d] = true
	}
	res, err := r.Sweep(ctx, func(d string) bool { return keep[d] }, 10*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	// The gone image's manifest, config and own layer; not the shared one.
	if len(res.Removed) != 3 || res.Freed == 0 {
		t.Fatalf("removed %v (%d bytes), want 3 blobs", res.Removed, res.Freed)
	}
	for _, d := range kept {
		if ok, _ := r.HasBlob(ctx, "app/kept", d); !ok {
			t.Errorf("referenced blob %s was removed", d)
		}
	}
	if ok, _ := r.HasManifest(ctx, "app/kept", keptManifest); !ok {
		t.Error("the referenced manifest was removed")
	}
	if ok, _ := r.HasBlob(ctx, "app/gone", gone[0]); ok {
		t.Errorf("unreferenced config %s is still there", gone[0])
	}
	if ok, _ := r.HasBlob(ctx, "app/gone", gone[2]); ok {
		t.Errorf("unreferenced layer %s is still there", gone[2])
	}
	if ok, _ := r.HasManifest(ctx, "app/gone", goneManifest); ok {
		t.Error("the unreferenced manifest is still there")
	}
	for _, d := range young {
		if ok, _ := r.HasBlob(ctx, "app/young", d); !ok {
			t.Errorf("young blob %s was removed within the grace period", d)
		}
	}
	if ok, _ := r.HasManifest(ctx, "app/young", youngManifest); !ok {
		t.Error("a young manifest was removed within the grace period")
	}

	// A push whose layers were "already there" writes only links and its
	// manifest: old blobs that a young manifest references are spared.
	age(t, r.Dir(), now.Add(-time.Hour))
	link := filepath.Join(r.reposDir(), "app", "kept", "_manifests", "revisions", "sha256", strings.TrimPrefix(keptManifest, "sha256:"), "link")
	if err := os.Chtimes(link, now, now); err != nil {
		t.Fatal(err)
	}
	res, err = r.Sweep(ctx, func(string) bool { return false }, 10*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range kept {
		if ok, _ := r.HasBlob(ctx, "app/kept", d); !ok {
			t.Errorf("blob %s of a young manifest was removed", d)
		}
	}
	if ok, _ := r.HasBlob(ctx, "app/young", young[1]); ok {
		t.Errorf("an old unreferenced blob survived: removed %v", res.Removed)
	}
}

// TestSweepPurgesOldUploads: an upload left unfinished for a day goes with
// the sweep; a recent one stays, for its client to resume.
func TestSweepPurgesOldUploads(t *testing.T) {
	r := newRegistry(t, 0)
	host := serve(t, r, Push)
	for range 2 {
		resp, err := http.Post("http://"+host+"/v2/a/b/blobs/uploads/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	uploads := filepath.Join(r.reposDir(), "a", "b", "_uploads")
	entries, _ := os.ReadDir(uploads)
	if len(entries) != 2 {
		t.Fatalf("%d uploads started, want 2", len(entries))
	}
	if _, err := r.Sweep(context.Background(), func(string) bool { return true }, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(uploads); len(entries) != 2 {
		t.Fatalf("%d of 2 recent uploads left after the sweep", len(entries))
	}
	// The library dates an upload by its startedat file.
	if _, err := r.Sweep(context.Background(), func(string) bool { return true }, 0, time.Now().Add(25*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(uploads); len(entries) != 0 {
		t.Fatalf("%d old uploads left after the sweep", len(entries))
	}
}
