package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// savedWithImages runs a manager holding one pushed image that app shop's
// service web runs, and returns the snapshot it saves with images and its
// admin token (which a restore of it brings).
func savedWithImages(t *testing.T, layerSize int) ([]byte, testImage, string) {
	t.Helper()
	s, c := startServer(t)
	im := newTestImage(t, layerSize)
	adminRegistry(s).push(t, "shop/web", im)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.PutImage(ctx, api.ImagePut{App: "shop", Service: "web", Digest: im.digest}); err != nil {
		t.Fatal(err)
	}
	app := &types.App{Name: "shop", Services: []*types.Service{{Name: "web", Image: "shop-web:dev", ClusterImage: "shop/web@" + im.digest, Replicas: 1}}}
	if _, err := c.SubmitApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.SaveSnapshotWithImages(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), im, s.AdminToken()
}

// TestSnapshotImagesRefused: a restore whose images section is cut,
// altered or does not fit the registry is refused with a sentence saying
// so, and the restoring manager's state is what it was.
func TestSnapshotImagesRefused(t *testing.T) {
	snap, im, _ := savedWithImages(t, 128<<10)
	layerAt := bytes.Index(snap, im.layer[:64])
	headerEnd := bytes.IndexByte(snap[len(imagesMagic)+1:], '\n') + len(imagesMagic) + 1
	stateAt := bytes.Index(snap, []byte("berth-raft-snapshot v1\n"))
	if layerAt < 0 || stateAt < 0 {
		t.Fatal("the snapshot lacks the layer or the state")
	}
	sumAt := bytes.LastIndex(snap[:stateAt], []byte("sha256:"))
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(snap)) }
	cases := []struct {
		name, want string
		body       []byte
		maxBytes   int64
	}{
		{"cut in the header", "cut short or damaged", snap[:headerEnd-10], 0},
		{"cut in a blob", "the file ends inside blob", snap[:layerAt+1000], 0},
		{"cut before the checksum", "no checksum after the images", snap[:sumAt], 0},
		{"a blob altered", "does not match its digest", edit(func(b []byte) []byte { b[layerAt+5] ^= 1; return b }), 0},
		{"the header altered", "its checksum does not match", edit(func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"media_type":"application/vnd.docker.container.image.v1+json"`), []byte(`"media_type":"application/vnd.docker.container.image.v2+json"`), 1)
		}), 0},
		{"the checksum altered", "its checksum does not match", edit(func(b []byte) []byte { b[sumAt+8] ^= 1; return b }), 0},
		{"the header not JSON", "its header is not JSON", edit(func(b []byte) []byte { b[len(imagesMagic)+1] = 'x'; return b }), 0},
		{"past --registry-max-size", "raise --registry-max-size", snap, 64 << 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startServerWith(t, func(cfg *Config) {
				if tc.maxBytes > 0 {
					cfg.RegistryMaxBytes = tc.maxBytes
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := c.RestoreSnapshotImages(ctx, bytes.NewReader(tc.body))
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Status >= 500 && ae.Status != http.StatusInsufficientStorage || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was restored") {
				t.Fatalf("restore: %v, want a refusal saying %q and that nothing was restored", err, tc.want)
			}
			if apps, err := c.ListApps(ctx); err != nil || len(apps) != 0 {
				t.Errorf("after a refused restore: apps %v, %v", apps, err)
			}
			if len(s.store.View().Images()) != 0 {
				t.Errorf("after a refused restore the manager has image records")
			}
		})
	}
}

// TestSnapshotImagesRestore: a snapshot with images restores onto a
// fresh manager, whose registry then serves the image by digest; one
// without lists it as missing. An old snapshot (state only) restores.
func TestSnapshotImagesRestore(t *testing.T) {
	snap, im, token := savedWithImages(t, 64<<10)
	stateAt := bytes.Index(snap, []byte("berth-raft-snapshot v1\n"))
	for _, tc := range []struct {
		name    string
		body    []byte
		present bool
	}{
		{"with images", snap, true},
		{"state only", snap[stateAt:], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startServer(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := c.RestoreSnapshotImages(ctx, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			want := api.SnapshotImage{App: "shop", Service: "web", Ref: "shop/web@" + im.digest, Cluster: true,
				Size: int64(len(im.config) + len(im.layer) + len(im.manifest)), Present: tc.present, Carried: tc.present}
			if len(res.Images) != 1 || res.Images[0] != want {
				t.Fatalf("restore answered %+v, want %+v", res.Images, want)
			}
			reg := adminRegistry(s)
			reg.token = token
			err = reg.pull(t, "shop/web", im)
			if tc.present && err != nil {
				t.Errorf("the restored image: %v", err)
			}
			if !tc.present && err == nil {
				t.Errorf("the registry serves an image the snapshot did not carry")
			}
			rec := s.store.View().Image("shop/web@" + im.digest)
			if rec == nil || rec.HasReplica(s.id) != tc.present {
				t.Errorf("the restored record %+v, want this manager a replica: %v", rec, tc.present)
			}
		})
	}
}

func TestSnapshotSaveImagesFlag(t *testing.T) {
	s, _ := startServer(t)
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+api.PathSnapshot+"?images=maybe", nil)
	req.Header.Set(api.HeaderAuthorization, "Bearer "+s.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "images: must be true or false") {
		t.Fatalf("a bad images flag: %d %s", resp.StatusCode, b)
	}
}

// TestSnapshotSaveImagesLacking: a manager asked to carry an image it does
// not hold refuses before it sends anything, naming the image.
func TestSnapshotSaveImagesLacking(t *testing.T) {
	_, c := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ref := "shop/web@sha256:" + strings.Repeat("a", 64)
	app := &types.App{Name: "shop", Services: []*types.Service{{Name: "web", Image: "shop-web:dev", ClusterImage: ref, Replicas: 1}}}
	if _, err := c.SubmitApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := c.SaveSnapshotWithImages(ctx, &buf)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || !strings.Contains(err.Error(), "lacks image "+ref) || buf.Len() != 0 {
		t.Fatalf("save with an image nowhere: %v (%d bytes), want 409 naming %s", err, buf.Len(), ref)
	}
	needs, err := c.SnapshotImages(ctx)
	if err != nil || len(needs) != 1 || needs[0].Present || needs[0].Ref != ref {
		t.Fatalf("the images listed: %+v, %v", needs, err)
	}
}

// TestSnapshotSaveCutMidway: a save that fails after it began to send
// (here a blob the registry lost bytes of) cuts the answer, so the client
// sees an error instead of a file that looks whole.
func TestSnapshotSaveCutMidway(t *testing.T) {
	s, c := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	app := &types.App{Name: "shop"}
	for _, svc := range []string{"api", "web"} { // sorted: api's blobs go first
		im := newTestImage(t, 256<<10)
		adminRegistry(s).push(t, "shop/"+svc, im)
		if _, err := c.PutImage(ctx, api.ImagePut{App: "shop", Service: svc, Digest: im.digest}); err != nil {
			t.Fatal(err)
		}
		app.Services = append(app.Services, &types.Service{Name: svc, Image: svc + ":dev", ClusterImage: "shop/" + svc + "@" + im.digest, Replicas: 1})
		if svc == "web" {
			hex := strings.TrimPrefix(im.layerDigest(), "sha256:")
			if err := os.Truncate(filepath.Join(s.registry.Dir(), "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data"), 1000); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := c.SubmitApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.SaveSnapshotWithImages(ctx, &buf); err == nil {
		t.Fatalf("a save that failed midway answered %d bytes and no error", buf.Len())
	}
}
