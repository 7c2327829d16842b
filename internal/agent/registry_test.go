package agent

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/testregistry"
)

// registryFixture is a cluster CA, a node identity the endpoint dials
// with, and registries standing in for managers.
type registryFixture struct {
	t  testing.TB
	fm *fakeManager // only its CA is used
}

func newRegistryFixture(t *testing.T) *registryFixture {
	return &registryFixture{t: t, fm: newUnstartedFakeManager(t)}
}

// manager serves reg over mutual TLS as a manager's cluster port does: its
// certificate has the manager role, and it admits pulls by a worker of
// the cluster.
func (f *registryFixture) manager(reg http.Handler) string {
	return f.serve(f.fm.issue(f.t, pki.RoleManager, "m-"+randSuffix()), reg)
}

// serve serves h over TLS with id's certificate, demanding a client
// certificate of the cluster.
func (f *registryFixture) serve(id *pki.Identity, h http.Handler) string {
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = id.ServerTLS(tls.RequireAndVerifyClientCert)
	// A manager's cluster port speaks HTTP/2, as net/http does over TLS.
	srv.EnableHTTP2 = true
	srv.StartTLS()
	f.t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// requireWorker is what the managers' registry admits for a pull.
func requireWorker(r *http.Request) error {
	if r.TLS == nil {
		return errors.New("no TLS")
	}
	_, role, err := pki.PeerIdentity(*r.TLS)
	if err != nil || role != pki.RoleWorker {
		return errors.New("not a worker of the cluster")
	}
	return nil
}

// endpoint is the pull-through endpoint over plain HTTP on loopback,
// dialing managers with a worker certificate.
func (f *registryFixture) endpoint(managers ...string) string {
	p := newRegistryProxy(pki.NewLive(f.fm.issue(f.t, pki.RoleWorker, "node-1")), func() []string { return managers }, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(p)
	f.t.Cleanup(srv.Close)
	return srv.URL
}

// downAddr is an address where nothing listens.
func downAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

var suffixN atomic.Int64

func randSuffix() string { return strconv.FormatInt(suffixN.Add(1), 10) }

func newTestImage(t *testing.T, sizes ...int) *testregistry.Image {
	t.Helper()
	var files []testregistry.File
	for i, n := range sizes {
		files = append(files, testregistry.RandomFile("layer"+strconv.Itoa(i), n))
	}
	img, err := testregistry.NewImage([]string{"/layer0"}, files...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func get(t *testing.T, method, url string, hdr http.Header) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(req.Header, hdr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func countOf(reqs []string, want string) int {
	n := 0
	for _, r := range reqs {
		if r == want {
			n++
		}
	}
	return n
}

// TestRegistryEndpointFailsOver: a manager that is down and one that lacks
// a blob are passed over for one that has it; when none has it the 404 is
// relayed, and when none answers the engine hears 503 naming them.
func TestRegistryEndpointFailsOver(t *testing.T) {
	f := newRegistryFixture(t)
	img := newTestImage(t, 1000, 2000)
	partial, full := testregistry.New(), testregistry.New()
	for _, r := range []*testregistry.Registry{partial, full} {
		r.Admit = requireWorker
		r.Add("app/web", img)
	}
	partial.Lose(img.Layers[1])
	down, partialAddr, fullAddr := downAddr(t), f.manager(partial), f.manager(full)

	ep := f.endpoint(down, partialAddr, fullAddr)
	blob := "/v2/app/web/blobs/" + img.Layers[1]
	status, hdr, body := get(t, http.MethodGet, ep+"/v2/app/web/manifests/"+img.Digest, http.Header{"Accept": {testregistry.MediaManifest}})
	if status != http.StatusOK || !bytes.Equal(body, img.Manifest) || hdr.Get("Docker-Content-Digest") != img.Digest {
		t.Fatalf("manifest: %d %q, want 200 and the manifest", status, body)
	}
	status, _, body = get(t, http.MethodGet, ep+blob, nil)
	if status != http.StatusOK || !bytes.Equal(body, img.Blobs[img.Layers[1]]) {
		t.Fatalf("blob: %d (%d bytes), want 200 and the blob", status, len(body))
	}
	if n := countOf(partial.Requests(), "GET "+blob); n != 1 {
		t.Errorf("the manager lacking the blob was asked %d times, want once (before the other)", n)
	}
	if n := countOf(full.Requests(), "GET "+blob); n != 1 {
		t.Errorf("the manager holding the blob was asked %d times, want once", n)
	}
	status, hdr, _ = get(t, http.MethodHead, ep+blob, nil)
	if status != http.StatusOK || hdr.Get("Content-Length") != strconv.Itoa(len(img.Blobs[img.Layers[1]])) {
		t.Errorf("HEAD blob: %d, length %s, want 200 and the blob's length", status, hdr.Get("Content-Length"))
	}

	// Nowhere: the registry's own 404 reaches the engine.
	status, _, body = get(t, http.MethodGet, f.endpoint(down, partialAddr)+blob, nil)
	if status != http.StatusNotFound || !strings.Contains(string(body), "BLOB_UNKNOWN") {
		t.Errorf("blob nowhere: %d %s, want 404 BLOB_UNKNOWN", status, body)
	}
	// No manager answers.
	status, _, body = get(t, http.MethodGet, f.endpoint(down)+blob, nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), down) {
		t.Errorf("no manager: %d %s, want 503 naming %s", status, body, down)
	}
}

// TestRegistryEndpointOnlyPulls: anything but a GET or HEAD under /v2/ is
// refused without reaching a manager, and the engine's credentials stay
// with the endpoint.
func TestRegistryEndpointOnlyPulls(t *testing.T) {
	f := newRegistryFixture(t)
	reg := testregistry.New()
	var mu sync.Mutex
	var auths []string
	reg.Admit = func(r *http.Request) error {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		return requireWorker(r)
	}
	ep := f.endpoint(f.manager(reg))
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		status, hdr, body := get(t, m, ep+"/v2/app/web/blobs/uploads/", nil)
		if status != http.StatusMethodNotAllowed || hdr.Get("Allow") != "GET, HEAD" || !strings.Contains(string(body), "only pulls") {
			t.Errorf("%s: %d %s (Allow %q), want 405 saying it only pulls", m, status, body, hdr.Get("Allow"))
		}
	}
	for _, p := range []string{"/v1/nodes", "/", "/v2/../v1/nodes", "/v2//x", "/v2x"} {
		if status, _, _ := get(t, http.MethodGet, ep+p, nil); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, status)
		}
	}
	if got := reg.Requests(); len(got) != 0 {
		t.Fatalf("refused requests reached the manager: %v", got)
	}
	status, _, _ := get(t, http.MethodGet, ep+"/v2/", http.Header{"Authorization": {"Basic dXNlcjpzZWNyZXQ="}})
	if status != http.StatusOK {
		t.Fatalf("GET /v2/: %d, want 200", status)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auths) != 1 || auths[0] != "" {
		t.Errorf("the manager saw Authorization %q, want none forwarded", auths)
	}
}

// TestRegistryEndpointTalksOnlyToManagers: a server whose certificate is a
// worker's of the cluster, or a manager's of another cluster, gets no
// request; the endpoint passes on to a manager of its own.
func TestRegistryEndpointTalksOnlyToManagers(t *testing.T) {
	f := newRegistryFixture(t)
	img := newTestImage(t, 100)
	var impostorHits atomic.Int64
	impostor := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		impostorHits.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	other := newUnstartedFakeManager(t) // another cluster's CA
	worker := f.serve(f.fm.issue(t, pki.RoleWorker, "w-2"), impostor)
	foreign := f.serve(other.issue(t, pki.RoleManager, "m-x"), impostor)
	good := testregistry.New()
	good.Admit = requireWorker
	good.Add("app/web", img)

	ep := f.endpoint(worker, foreign, f.manager(good))
	status, _, body := get(t, http.MethodGet, ep+"/v2/app/web/blobs/"+img.Layers[0], nil)
	if status != http.StatusOK || !bytes.Equal(body, img.Blobs[img.Layers[0]]) {
		t.Fatalf("blob: %d, want 200 from the cluster's manager", status)
	}
	if n := impostorHits.Load(); n != 0 {
		t.Errorf("servers that are not managers of the cluster got %d requests, want none", n)
	}
}

// TestRegistryEndpointStreams: the endpoint hands a blob on as it comes,
// so the engine reads the start of a blob whose end is not yet sent.
func TestRegistryEndpointStreams(t *testing.T) {
	f := newRegistryFixture(t)
	const chunk = 1 << 20
	release := make(chan struct{})
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(2*chunk))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(bytes.Repeat([]byte{'a'}, chunk))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(bytes.Repeat([]byte{'b'}, chunk))
	})
	ep := f.endpoint(f.manager(up))
	type result struct {
		resp *http.Response
		err  error
	}
	first := make(chan result, 1)
	go func() {
		resp, err := http.Get(ep + "/v2/app/web/blobs/sha256:abc")
		if err == nil {
			_, err = io.ReadFull(resp.Body, make([]byte, chunk))
		}
		first <- result{resp, err}
	}()
	var resp *http.Response
	select {
	case r := <-first:
		if r.err != nil {
			t.Fatalf("read the first part: %v", r.err)
		}
		resp = r.resp
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the first part of the blob did not come through before its end was sent: the endpoint buffers")
	}
	defer resp.Body.Close()
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != chunk || rest[0] != 'b' {
		t.Fatalf("rest: %d bytes, %v; want the second part", len(rest), err)
	}
}

// TestRegistryEndpointAddress: the endpoint listens on loopback only, and
// a port in use is an error that says what to do.
func TestRegistryEndpointAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		addr string
		want string // in the error; "" for none
	}{
		{"127.0.0.1:0", ""},
		{busy.Addr().String(), "--registry-port"},
		{"0.0.0.0:0", "not on loopback"},
		{"10.1.2.3:7703", "not on loopback"},
		{"nonsense", "want 127.0.0.1:PORT"},
	}
	for _, tt := range tests {
		ln, err := listenRegistry(tt.addr)
		if ln != nil {
			ln.Close()
		}
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v, want a listener", tt.addr, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want an error saying %q", tt.addr, err, tt.want)
		}
	}
}

// TestRegistryEndpointAvoidsBrokenManager: a manager whose answer broke
// off mid-blob is tried last next time, so the engine's retry of the
// download goes to another one.
func TestRegistryEndpointAvoidsBrokenManager(t *testing.T) {
	f := newRegistryFixture(t)
	img := newTestImage(t, 64<<10)
	blob := img.Blobs[img.Layers[0]]
	var brokenHits atomic.Int64
	broken := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		brokenHits.Add(1)
		w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(blob[:len(blob)/2])
		panic(http.ErrAbortHandler) // the connection drops mid-body
	})
	good := testregistry.New()
	good.Add("app/web", img)
	ep := f.endpoint(f.manager(broken), f.manager(good))
	url := ep + "/v2/app/web/blobs/" + img.Layers[0]

	resp, err := http.Get(url)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("the broken answer came through whole")
	}
	status, _, body := get(t, http.MethodGet, url, nil)
	if status != http.StatusOK || !bytes.Equal(body, blob) {
		t.Fatalf("retry: %d (%d bytes), want 200 and the blob", status, len(body))
	}
	if n := brokenHits.Load(); n != 1 {
		t.Errorf("the manager that broke off was asked %d times, want once (the retry goes elsewhere)", n)
	}
}
