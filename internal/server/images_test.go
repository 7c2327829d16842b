package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/registry"
)

// regClient speaks the registry API to one manager port: base is
// "http://host:port" or "https://host:port", with the client's credential.
type regClient struct {
	base  string
	http  *http.Client
	token string
}

func (c regClient) do(t *testing.T, method, path, ctype string, body []byte) *http.Response {
	t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = c.base + path
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Accept", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// pushBlob uploads one blob (POST, then PUT with the digest); it returns
// the answer's status.
func (c regClient) pushBlob(t *testing.T, repo string, data []byte) int {
	t.Helper()
	return c.pushBlobAnswer(t, repo, data).StatusCode
}

func (c regClient) pushBlobAnswer(t *testing.T, repo string, data []byte) *http.Response {
	t.Helper()
	resp := c.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", "", nil)
	if resp.StatusCode != http.StatusAccepted {
		return resp
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", digest.FromBytes(data).String())
	loc.RawQuery = q.Encode()
	if !loc.IsAbs() {
		base, _ := url.Parse(c.base)
		loc = base.ResolveReference(loc)
	}
	return c.do(t, http.MethodPut, loc.String(), "application/octet-stream", data)
}

// testImage is an image the tests push: a config and one layer of random
// bytes, and its manifest.
type testImage struct {
	config, layer, manifest []byte
	digest                  string
}

func newTestImage(t *testing.T, layerSize int) testImage {
	t.Helper()
	layer := make([]byte, layerSize)
	_, _ = rand.Read(layer)
	config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}`, digest.FromBytes(layer))
	m := map[string]any{
		"schemaVersion": 2, "mediaType": registry.MediaTypeDockerManifest,
		"config": registry.Descriptor{MediaType: "application/vnd.docker.container.image.v1+json", Digest: digest.FromBytes(config).String(), Size: int64(len(config))},
		"layers": []registry.Descriptor{{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Digest: digest.FromBytes(layer).String(), Size: int64(len(layer))}},
	}
	manifest, _ := json.Marshal(m)
	return testImage{config: config, layer: layer, manifest: manifest, digest: digest.FromBytes(manifest).String()}
}

func (im testImage) configDigest() string { return digest.FromBytes(im.config).String() }
func (im testImage) layerDigest() string  { return digest.FromBytes(im.layer).String() }

// push uploads the image's blobs and manifest to repo, as `docker push`
// does.
func (c regClient) push(t *testing.T, repo string, im testImage) {
	t.Helper()
	for _, b := range [][]byte{im.config, im.layer} {
		if st := c.pushBlob(t, repo, b); st != http.StatusCreated {
			t.Fatalf("push a blob to %s: status %d", repo, st)
		}
	}
	resp := c.do(t, http.MethodPut, "/v2/"+repo+"/manifests/berth-push", registry.MediaTypeDockerManifest, im.manifest)
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("push the manifest to %s: status %d: %s", repo, resp.StatusCode, b)
	}
}

// pull fetches the image by digest and checks every byte.
func (c regClient) pull(t *testing.T, repo string, im testImage) error {
	t.Helper()
	resp := c.do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+im.digest, registry.MediaTypeDockerManifest, nil)
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, im.manifest) {
		return fmt.Errorf("manifest: status %d", resp.StatusCode)
	}
	for _, want := range [][]byte{im.config, im.layer} {
		resp := c.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+digest.FromBytes(want).String(), "", nil)
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
			return fmt.Errorf("blob %s: status %d, %d bytes", digest.FromBytes(want), resp.StatusCode, len(got))
		}
	}
	return nil
}

// adminRegistry is the registry on s's (plain loopback) API port, with
// the admin token.
func adminRegistry(s *Server) regClient {
	return regClient{base: "http://" + s.Addr(), http: http.DefaultClient, token: s.AdminToken()}
}

// nodeRegistry is the registry on s's cluster port with a certificate.
func nodeRegistry(s *Server, id *pki.Identity) regClient {
	tr := &http.Transport{TLSClientConfig: id.ClientTLS(pki.RoleManager.ServerName())}
	return regClient{base: "https://" + s.ClusterAddr(), http: &http.Client{Transport: tr}}
}

func registryError(t *testing.T, resp *http.Response) string {
	t.Helper()
	code, _ := registryErrorMessage(t, resp)
	return code
}

func registryErrorMessage(t *testing.T, resp *http.Response) (code, msg string) {
	t.Helper()
	var body struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Errors) != 1 {
		t.Fatalf("answer %d is not one registry error: %v %+v", resp.StatusCode, err, body)
	}
	return body.Errors[0].Code, body.Errors[0].Message
}

// TestRegistryAccess: the admin pushes on the API port and records the
// image; a worker pulls on the cluster port but may not push; no
// credential gets 401 with a challenge on both ports.
func TestRegistryAccess(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	im := newTestImage(t, 4096)
	adminRegistry(s).push(t, "shop/web", im)
	rec, err := c.PutImage(ctx, api.ImagePut{App: "shop", Service: "web", Digest: im.digest})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Ref != "shop/web@"+im.digest || rec.Config != im.configDigest() || len(rec.Blobs) != 2 ||
		len(rec.Replicas) != 1 || rec.Replicas[0] != s.id || rec.Size != int64(len(im.config)+len(im.layer)+len(im.manifest)) {
		t.Fatalf("record %+v", rec)
	}
	if got, err := c.Image(ctx, im.digest); err != nil || got.Ref != rec.Ref {
		t.Fatalf("Image(%s) = %v, %v", im.digest, got, err)
	}
	if got, err := c.Images(ctx); err != nil || len(got) != 1 {
		t.Fatalf("Images = %v, %v", got, err)
	}

	worker := nodeRegistry(s, joinAs(t, s, "w1", "", nil))
	if err := worker.pull(t, "shop/web", im); err != nil {
		t.Fatalf("a worker pull: %v", err)
	}
	resp := worker.do(t, http.MethodPost, "/v2/shop/web/blobs/uploads/", "", nil)
	if resp.StatusCode != http.StatusForbidden || registryError(t, resp) != "DENIED" {
		t.Fatalf("a worker push: status %d, want 403 DENIED", resp.StatusCode)
	}

	tok, _ := pki.ParseToken(s.WorkerToken())
	anonCluster := regClient{base: "https://" + s.ClusterAddr(), http: &http.Client{Transport: &http.Transport{TLSClientConfig: pki.PinnedTLS(tok.Fingerprint)}}}
	for name, rc := range map[string]regClient{
		"API, no token":           {base: "http://" + s.Addr(), http: http.DefaultClient},
		"API, wrong token":        {base: "http://" + s.Addr(), http: http.DefaultClient, token: "BERTHADM-nope"},
		"cluster, no certificate": anonCluster,
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			path := "/v2/shop/web/manifests/" + im.digest
			if method == http.MethodPost {
				path = "/v2/shop/web/blobs/uploads/"
			}
			resp := rc.do(t, method, path, "", nil)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="berth"` || registryError(t, resp) != "UNAUTHORIZED" {
				t.Errorf("%s, %s: status %d, challenge %q; want 401 UNAUTHORIZED with a challenge", name, method, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	// A certificate of another cluster does not get past the handshake.
	foreign := foreignIdentity(t)
	fc := &http.Client{Transport: &http.Transport{TLSClientConfig: foreign.ClientTLS(pki.RoleManager.ServerName())}}
	if resp, err := fc.Get("https://" + s.ClusterAddr() + "/v2/shop/web/manifests/" + im.digest); err == nil {
		resp.Body.Close()
		t.Fatalf("a foreign certificate got an answer: %d", resp.StatusCode)
	}
}

// TestPutImageRefusals: bad input gets a 400 naming the field.
func TestPutImageRefusals(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	im := newTestImage(t, 1024)
	adminRegistry(s).push(t, "shop/web", im)
	// The config only: the manifest then names a layer that is not there.
	partial := newTestImage(t, 1024)
	if st := adminRegistry(s).pushBlob(t, "shop/web", partial.config); st != http.StatusCreated {
		t.Fatal(st)
	}
	cases := []struct {
		name  string
		in    api.ImagePut
		field string
	}{
		{"no app", api.ImagePut{Service: "web", Digest: im.digest}, "app"},
		{"no service", api.ImagePut{App: "shop", Digest: im.digest}, "service"},
		{"bad app", api.ImagePut{App: "sh op", Service: "web", Digest: im.digest}, "app"},
		{"bad service", api.ImagePut{App: "shop", Service: "we b", Digest: im.digest}, "service"},
		{"other repo", api.ImagePut{App: "shop", Service: "web", Repo: "shop/db", Digest: im.digest}, "repo"},
		{"bad digest", api.ImagePut{App: "shop", Service: "web", Digest: "sha256:xyz"}, "digest"},
		{"not pushed", api.ImagePut{App: "shop", Service: "web", Digest: partial.digest}, "digest"},
		{"pushed elsewhere", api.ImagePut{App: "shop", Service: "db", Digest: im.digest}, "digest"},
	}
	for _, tc := range cases {
		_, err := c.PutImage(ctx, tc.in)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Field != tc.field {
			t.Errorf("%s: %v, want 400 naming %s", tc.name, err, tc.field)
		}
	}
	if _, err := c.Image(ctx, "nope"); err == nil {
		t.Error("a bad digest was looked up")
	}
	if _, err := c.Image(ctx, partial.digest); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("an unknown image: %v, want not found", err)
	}
}

// TestRegistryMaxSize: a push past --registry-max-size is refused with
// DENIED and the sentence that says what to do.
func TestRegistryMaxSize(t *testing.T) {
	s, _ := startServerWith(t, func(c *Config) { c.RegistryMaxBytes = 64 << 10 })
	big := newTestImage(t, 128<<10)
	rc := adminRegistry(s)
	if st := rc.pushBlob(t, "shop/web", big.config); st != http.StatusCreated {
		t.Fatalf("a small blob: %d", st)
	}
	resp := rc.pushBlobAnswer(t, "shop/web", big.layer)
	code, msg := registryErrorMessage(t, resp)
	if resp.StatusCode != http.StatusForbidden || code != "DENIED" ||
		!strings.Contains(msg, "the cluster registry is full (") || !strings.Contains(msg, "raise --registry-max-size") {
		t.Fatalf("a blob past the limit: %d %s %q, want 403 DENIED saying the registry is full", resp.StatusCode, code, msg)
	}
	if used, _ := s.registry.Usage(); used > 64<<10 {
		t.Errorf("the registry holds %d bytes, past its limit", used)
	}
	metrics := rc.do(t, http.MethodGet, "/metrics", "", nil)
	b, _ := io.ReadAll(metrics.Body)
	if !bytes.Contains(b, []byte("berth_registry_max_bytes 65536")) || !bytes.Contains(b, []byte("berth_registry_bytes ")) {
		t.Errorf("the metrics lack the registry's size and limit")
	}
}

// TestImageReplication: an image pushed to one manager of three reaches
// all three, and a manager that joins later; with the one that took the
// push stopped, another serves every byte.
func TestImageReplication(t *testing.T) {
	ms := startCluster(t)
	ctx := context.Background()
	first := ms[0].s
	took := ms[1].s // a follower or the leader: either way the record goes through the leader
	c := api.NewClient(took.Addr(), api.WithToken(first.AdminToken()))
	im := newTestImage(t, 256<<10)
	admin := regClient{base: "http://" + took.Addr(), http: http.DefaultClient, token: first.AdminToken()}
	admin.push(t, "shop/web", im)
	rec, err := c.PutImage(ctx, api.ImagePut{App: "shop", Service: "web", Digest: im.digest})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Replicas) != 1 || rec.Replicas[0] != took.id {
		t.Fatalf("replicas at first %v, want only %s", rec.Replicas, took.id)
	}
	// A blocking query wakes as replicas are recorded.
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var index uint64
	for {
		got, meta, err := c.ImageAfter(wctx, im.digest, api.QueryOptions{Index: index, Wait: 30 * time.Second})
		if err != nil {
			t.Fatalf("waiting for three replicas: %v", err)
		}
		if len(got.Replicas) == 3 {
			break
		}
		if meta.Index <= index {
			t.Fatalf("a blocking query answered at index %d, not past %d", meta.Index, index)
		}
		index = meta.Index
	}
	for _, m := range ms {
		if ok, _ := m.s.registry.HasManifest(ctx, "shop/web", im.digest); !ok {
			t.Errorf("%s is recorded a replica but lacks the manifest", m.s.cfg.Name)
		}
	}

	// A manager that joins now catches up.
	token, err := first.openToken(first.store.View().Cluster(), pki.RoleManager)
	if err != nil {
		t.Fatal(err)
	}
	m4 := runManager(t, "m4", first.ClusterAddr(), token)
	waitFor(t, 90*time.Second, "the new manager's replica", func() bool {
		im := first.store.View().Image("shop/web@" + im.digest)
		return im != nil && im.HasReplica(m4.s.id)
	})

	ms[1].stop()
	for _, m := range []*runningManager{ms[2], m4} {
		pullFrom := regClient{base: "http://" + m.s.Addr(), http: http.DefaultClient, token: first.AdminToken()}
		if err := pullFrom.pull(t, "shop/web", im); err != nil {
			t.Errorf("pull from %s with the pushing manager gone: %v", m.s.cfg.Name, err)
		}
	}
}
