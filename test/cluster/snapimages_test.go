package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
	"github.com/berth-dev/berth/test/testkit"
)

// TestSnapshotCarriesImages saves an app whose service runs a cluster
// image from one cluster, with and without --with-images, and restores
// into a fresh 3-manager cluster: a cut or altered images section is
// refused and changes nothing; the plain snapshot restores and lists the
// image the cluster lacks; the one with images puts it in the registry,
// and another manager of the new cluster serves it by digest.
func TestSnapshotCarriesImages(t *testing.T) {
	a := start(t, harness.Options{Managers: 1})
	am := a.Leader(t, 10*time.Second)
	img := pushImage(t, am, "shop", "web", 4<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app := &types.App{Name: "shop", Services: []*types.Service{
		{Name: "web", Image: "shop-web:dev", ClusterImage: "shop/web@" + img.digest, Build: &types.Build{Context: "."}, Replicas: 1},
		{Name: "cache", Image: "redis:7", Replicas: 1},
	}}
	if _, err := am.Client().SubmitApp(ctx, app); err != nil {
		t.Fatal(err)
	}

	plain, full := filepath.Join(a.Dir(), "plain.snap"), filepath.Join(a.Dir(), "full.snap")
	r := a.MustRun(t, am, "snapshot", "save", plain)
	for _, want := range []string{"shop/web@" + img.digest, "redis:7", "pulled by the nodes", "--with-images carries it"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("save lists no %q:\n%s", want, r.Stderr)
		}
	}
	saving := time.Now()
	r = a.MustRun(t, am, "snapshot", "save", "--with-images", full)
	saved := time.Since(saving)
	if !strings.Contains(r.Stderr, "in this snapshot") {
		t.Errorf("save --with-images does not say the image is in the snapshot:\n%s", r.Stderr)
	}
	st, err := os.Stat(full)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Size() < int64(len(img.layer)) {
		t.Fatalf("the snapshot with images: mode %v, %d bytes", st.Mode().Perm(), st.Size())
	}
	data, _ := os.ReadFile(full)
	at := bytes.Index(data, img.layer[:64])
	if at < 0 {
		t.Fatal("the snapshot does not hold the layer")
	}
	tampered := filepath.Join(a.Dir(), "tampered.snap")
	bad := bytes.Clone(data)
	bad[at+1000] ^= 0xff
	writeSnap(t, tampered, bad)
	cut := filepath.Join(a.Dir(), "cut.snap")
	writeSnap(t, cut, data[:at+len(img.layer)/2])

	b := start(t, harness.Options{})
	bm := b.Leader(t, 10*time.Second)
	for _, file := range []string{tampered, cut} {
		r := b.Run(t, bm, "snapshot", "restore", file)
		if r.Code == 0 || !strings.Contains(r.Stderr, "images section is cut short or damaged") {
			t.Fatalf("a damaged images section is not refused clearly: %s", r)
		}
		apps, err := bm.Client().ListApps(ctx)
		if err != nil || len(apps) != 0 {
			t.Fatalf("after a refused restore the cluster has apps %v (%v)", apps, err)
		}
	}

	r = b.MustRun(t, bm, "snapshot", "restore", plain)
	for _, want := range []string{"takes the admin token of the cluster the snapshot was saved from", "lacks", "shop/web@" + img.digest, "rerun berth up", "it builds the image again", "--with-images"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("the restore does not list the missing image (%q):\n%s", want, r.Stderr)
		}
	}
	if strings.Contains(r.Stderr, "redis:7") {
		t.Errorf("the restore lists an image the nodes pull themselves as missing:\n%s", r.Stderr)
	}

	// The restored state holds the saved cluster's admin token. Through a
	// follower: the leader takes the blobs, and the follower must then
	// copy them from it.
	other := otherThan(b.Managers, bm)
	restoring := time.Now()
	r, err = testkit.RunCLI(t, 2*time.Minute, bins.berth, b.Dir(), b.Dir(), []string{"BERTH_TOKEN=" + am.Token()},
		"--addr", other.URL(), "snapshot", "restore", full)
	restored := time.Since(restoring)
	if err != nil || r.Code != 0 {
		t.Fatalf("restore the snapshot with images: %v %s", err, r)
	}
	if strings.Contains(r.Stderr, "lacks") || !strings.Contains(r.Stderr, "Put 1 image") || strings.Contains(r.Stderr, "admin token") {
		t.Errorf("the restore with images:\n%s", r.Stderr)
	}
	reg := imageRegistry{base: other.URL(), token: am.Token()}
	harness.WaitFor(t, 60*time.Second, other.Name+" serves the restored image", func() error {
		for path, want := range map[string][]byte{
			"/v2/shop/web/manifests/" + img.digest:                       img.manifest,
			"/v2/shop/web/blobs/" + digest.FromBytes(img.layer).String(): img.layer,
		} {
			if err := reg.expect(path, want); err != nil {
				return err
			}
		}
		return nil
	})
	harness.Figure(t, "snapshot-with-images", "file_bytes", st.Size(), "save", saved, "restore_via_follower", restored, "on_another_manager", time.Since(restoring))
}

type testImage struct {
	digest          string
	layer, manifest []byte
}

// pushImage pushes an image of one random layer to m's registry and
// records it.
func pushImage(t *testing.T, m *harness.Manager, app, svc string, size int) testImage {
	t.Helper()
	layer := make([]byte, size)
	_, _ = rand.Read(layer)
	config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}`, digest.FromBytes(layer))
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
		"config": map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest.FromBytes(config), "size": len(config)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": digest.FromBytes(layer), "size": len(layer)}},
	})
	reg, repo := registryAt(m), app+"/"+svc
	for _, b := range [][]byte{config, layer} {
		reg.putBlob(t, repo, b)
	}
	if st := reg.call(t, http.MethodPut, "/v2/"+repo+"/manifests/berth-push", "application/vnd.docker.distribution.manifest.v2+json", manifest).StatusCode; st != http.StatusCreated {
		t.Fatalf("push the manifest: status %d", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dgst := digest.FromBytes(manifest).String()
	if _, err := m.Client().PutImage(ctx, api.ImagePut{App: app, Service: svc, Digest: dgst}); err != nil {
		t.Fatal(err)
	}
	return testImage{digest: dgst, layer: layer, manifest: manifest}
}

// expect fetches path and says how it differs from want.
func (r imageRegistry) expect(path string, want []byte) error {
	req, err := http.NewRequest(http.MethodGet, r.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		return fmt.Errorf("GET %s: status %d, %d bytes", path, resp.StatusCode, len(got))
	}
	return nil
}

func writeSnap(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
