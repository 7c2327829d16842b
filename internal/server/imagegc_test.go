package server

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// TestImageGC: the leader keeps the image a service runs and the two
// newest others of that service, and deletes the rest and those of a
// service that is gone, but nothing within the grace period; the sweep
// then removes the blobs of deleted records and keeps referenced ones.
func TestImageGC(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	rc := adminRegistry(s)
	push := func(svc string) testImage {
		im := newTestImage(t, 2048)
		rc.push(t, "shop/"+svc, im)
		if _, err := c.PutImage(ctx, api.ImagePut{App: "shop", Service: svc, Digest: im.digest}); err != nil {
			t.Fatal(err)
		}
		return im
	}
	inUse, old, prev1, prev2 := push("web"), push("web"), push("web"), push("web")
	gone := push("gone") // no such service in the app
	app := validApp()
	app.Services[0].ClusterImage = types.ImageRef("shop/web", inUse.digest)
	if _, err := c.SubmitApp(ctx, app); err != nil {
		t.Fatal(err)
	}

	s.collectImagesOnce(ctx, DefaultRegistryGCGrace)
	if n := len(s.store.View().Images()); n != 5 {
		t.Fatalf("GC within the grace period left %d of 5 records", n)
	}
	s.collectImagesOnce(ctx, 0)
	var left []string
	for _, im := range s.store.View().Images() {
		left = append(left, im.ID)
	}
	want := []string{types.ImageRef("shop/web", inUse.digest), types.ImageRef("shop/web", prev1.digest), types.ImageRef("shop/web", prev2.digest)}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Fatalf("records after GC %v, want %v (the one in use and the two newest others)", left, want)
	}

	s.sweepOnce(ctx, DefaultRegistryGCGrace)
	if ok, _ := s.registry.HasBlob(ctx, "shop/web", old.layerDigest()); !ok {
		t.Error("the sweep took a blob written within the grace")
	}
	s.sweepOnce(ctx, 0)
	for _, im := range []testImage{old} {
		if ok, _ := s.registry.HasBlob(ctx, "shop/web", im.layerDigest()); ok {
			t.Error("the layer of a deleted record is still there")
		}
		if ok, _ := s.registry.HasManifest(ctx, "shop/web", im.digest); ok {
			t.Error("the manifest of a deleted record is still there")
		}
	}
	if ok, _ := s.registry.HasBlob(ctx, "shop/gone", gone.configDigest()); ok {
		t.Error("the config of a gone service's image is still there")
	}
	for _, im := range []testImage{inUse, prev1, prev2} {
		if err := rc.pull(t, "shop/web", im); err != nil {
			t.Errorf("a kept image after the sweep: %v", err)
		}
	}
}

// TestLostImageDropsItsReplica: a manager whose registry lost an image it
// is recorded to hold (its directory restored without it) drops the
// claim, so no one counts on its copy.
func TestLostImageDropsItsReplica(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	im := newTestImage(t, 1024)
	adminRegistry(s).push(t, "shop/web", im)
	if _, err := c.PutImage(ctx, api.ImagePut{App: "shop", Service: "web", Digest: im.digest}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(s.registry.Dir()); err != nil {
		t.Fatal(err)
	}
	s.replicateOnce(ctx)
	got, err := c.Image(ctx, im.digest)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Replicas) != 0 {
		t.Fatalf("replicas %v after the registry lost the image, want none", got.Replicas)
	}
}

// TestReplicasAreCurrentManagers: a replica recorded for a manager no
// longer in the cluster is not shown: no client may count on its copy.
func TestReplicasAreCurrentManagers(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	im := newTestImage(t, 1024)
	adminRegistry(s).push(t, "shop/web", im)
	rec, err := c.PutImage(ctx, api.ImagePut{App: "shop", Service: "web", Digest: im.digest})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, &state.ImageReplica{ID: rec.Ref, ManagerID: "0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.store.View().Image(rec.Ref).Replicas); n != 2 {
		t.Fatalf("stored replicas %d, want 2", n)
	}
	got, err := c.Image(ctx, rec.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Replicas) != 1 || got.Replicas[0] != s.id {
		t.Fatalf("replicas %v, want only %s", got.Replicas, s.id)
	}
}

// TestGCGrace: the grace paces GC (the default keeps the minute and the
// five minutes a manager always had), and a grace out of bounds is refused
// naming the flag.
func TestGCGrace(t *testing.T) {
	for _, tc := range []struct {
		grace, ceiling, want time.Duration
	}{
		{DefaultRegistryGCGrace, time.Minute, time.Minute},
		{DefaultRegistryGCGrace, 5 * time.Minute, 5 * time.Minute},
		{10 * time.Second, 5 * time.Minute, 5 * time.Second},
		{MinRegistryGCGrace, time.Minute, time.Second},
	} {
		if got := gcEvery(tc.grace, tc.ceiling); got != tc.want {
			t.Errorf("gcEvery(%s, %s) = %s, want %s", tc.grace, tc.ceiling, got, tc.want)
		}
	}
	for _, tc := range []struct {
		grace time.Duration
		err   string
	}{
		{0, ""},
		{time.Second, ""},
		{time.Millisecond, "--registry-gc-grace"},
		{-time.Second, "--registry-gc-grace"},
		{25 * time.Hour, "--registry-gc-grace"},
	} {
		c := Config{DataDir: t.TempDir(), RegistryGCGrace: tc.grace}
		err := c.fill()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("grace %s: %v", tc.grace, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("grace %s: error %v, want one naming %s", tc.grace, err, tc.err)
		case tc.grace == 0 && c.RegistryGCGrace != DefaultRegistryGCGrace:
			t.Errorf("grace 0 filled to %s, want the default", c.RegistryGCGrace)
		}
	}
}

// TestImageGCSparesAPendingApp: the images of an app not submitted yet
// (its first up pushes them one after another, then waits for replicas)
// stay while the app's newest push is within the grace, even when the
// first is older; once the app's pushes are all older, they go.
func TestImageGCSparesAPendingApp(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	rc := adminRegistry(s)
	var pushed []time.Time
	for _, svc := range []string{"api", "web"} {
		im := newTestImage(t, 1024)
		rc.push(t, "later/"+svc, im)
		rec, err := c.PutImage(ctx, api.ImagePut{App: "later", Service: svc, Digest: im.digest})
		if err != nil {
			t.Fatal(err)
		}
		pushed = append(pushed, rec.PushedAt)
	}
	d := pushed[1].Sub(pushed[0])
	if d <= 0 {
		t.Fatalf("pushed at %v: the second push is not later", pushed)
	}
	v := s.store.View()
	// The first push is older than the grace, the second is not.
	if got := collectableImages(v, pushed[1].Add(d/2), d); len(got) != 0 {
		t.Errorf("GC took %v while the app was still pushing", got)
	}
	if got := collectableImages(v, pushed[1].Add(d), d); len(got) != 2 {
		t.Errorf("GC took %v once the app's pushes were all older than the grace, want both", got)
	}
}
