package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// TestImageSurvivesPushingManager: an image pushed to the leader of three
// managers reaches the other two; with the one that took the push killed
// -9, another serves every byte of it.
func TestImageSurvivesPushingManager(t *testing.T) {
	c := start(t, harness.Options{})
	took := c.Leader(t, 10*time.Second)
	layer := make([]byte, 8<<20)
	_, _ = rand.Read(layer)
	config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}`, digest.FromBytes(layer))
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
		"config": map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest.FromBytes(config), "size": len(config)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": digest.FromBytes(layer), "size": len(layer)}},
	})
	dgst := digest.FromBytes(manifest).String()

	reg := registryAt(took)
	for _, b := range [][]byte{config, layer} {
		reg.putBlob(t, "shop/web", b)
	}
	if st := reg.call(t, http.MethodPut, "/v2/shop/web/manifests/berth-push", "application/vnd.docker.distribution.manifest.v2+json", manifest).StatusCode; st != http.StatusCreated {
		t.Fatalf("push the manifest: status %d", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pushed := time.Now()
	if _, err := took.Client().PutImage(ctx, api.ImagePut{App: "shop", Service: "web", Digest: dgst}); err != nil {
		t.Fatal(err)
	}
	other := otherThan(c.Managers, took)
	harness.WaitFor(t, 60*time.Second, "three managers hold the image", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		im, err := other.Client().Image(ctx, dgst)
		if err != nil {
			return err
		}
		if len(im.Replicas) != 3 {
			return fmt.Errorf("replicas %v", im.Replicas)
		}
		return nil
	})
	harness.Figure(t, "image-replication", "bytes", len(layer)+len(config)+len(manifest), "to_3_managers", time.Since(pushed))

	took.Kill(t)
	for _, m := range c.Managers {
		if m == took {
			continue
		}
		r := registryAt(m)
		got := r.call(t, http.MethodGet, "/v2/shop/web/manifests/"+dgst, "application/vnd.docker.distribution.manifest.v2+json", nil)
		if b, _ := io.ReadAll(got.Body); got.StatusCode != http.StatusOK || !bytes.Equal(b, manifest) {
			t.Errorf("%s: the manifest: status %d", m.Name, got.StatusCode)
		}
		for _, want := range [][]byte{config, layer} {
			got := r.call(t, http.MethodGet, "/v2/shop/web/blobs/"+digest.FromBytes(want).String(), "", nil)
			if b, _ := io.ReadAll(got.Body); got.StatusCode != http.StatusOK || !bytes.Equal(b, want) {
				t.Errorf("%s: blob %s: status %d, %d bytes", m.Name, digest.FromBytes(want), got.StatusCode, len(b))
			}
		}
	}
}

// imageRegistry speaks the registry API to one manager's API port with the
// admin token.
type imageRegistry struct{ base, token string }

func registryAt(m *harness.Manager) imageRegistry {
	return imageRegistry{base: m.URL(), token: m.Token()}
}

func (r imageRegistry) call(t *testing.T, method, path, ctype string, body []byte) *http.Response {
	t.Helper()
	u := path
	if len(path) > 0 && path[0] == '/' {
		u = r.base + path
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Accept", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (r imageRegistry) putBlob(t *testing.T, repo string, data []byte) {
	t.Helper()
	resp := r.call(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", "", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start an upload: status %d", resp.StatusCode)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", digest.FromBytes(data).String())
	loc.RawQuery = q.Encode()
	base, _ := url.Parse(r.base)
	if st := r.call(t, http.MethodPut, base.ResolveReference(loc).String(), "application/octet-stream", data).StatusCode; st != http.StatusCreated {
		t.Fatalf("upload a blob: status %d", st)
	}
}
