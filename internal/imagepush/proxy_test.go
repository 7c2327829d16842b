package imagepush

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/jsonstream"
)

func TestStartChecksTheRegistry(t *testing.T) {
	reg := newTestRegistry(t)
	old := httptest.NewTLSServer(http.NotFoundHandler()) // a manager before the registry
	defer old.Close()
	cases := []struct {
		name   string
		target string
		rt     http.RoundTripper
		check  func(error) bool
		want   string
	}{
		{"admin", reg.srv.URL, reg.transport(true), func(err error) bool { return err == nil }, ""},
		{"no credential", reg.srv.URL, reg.transport(false), func(err error) bool {
			var r *Refusal
			return errors.As(err, &r) && r.Status == http.StatusUnauthorized
		}, "the cluster registry refused the push without an admin credential (authentication required): use a context"},
		{"older manager", old.URL, old.Client().Transport, func(err error) bool { return errors.Is(err, ErrNoRegistry) },
			"the manager at " + strings.TrimPrefix(old.URL, "https://") + " answered 404 on /v2/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Start(context.Background(), c.target, c.rt)
			if err == nil {
				p.Close()
			}
			if !c.check(err) || (c.want != "" && !strings.HasPrefix(err.Error(), c.want)) {
				t.Fatalf("Start: %v, want %q", err, c.want)
			}
		})
	}
}

// TestProxyForwards speaks the registry protocol through the proxy as the
// engine does: no credential of its own, plain HTTP, relative uploads.
func TestProxyForwards(t *testing.T) {
	reg := newTestRegistry(t)
	p := startProxy(t, reg)
	base := "http://" + p.Host()

	resp := do(t, http.MethodPost, base+"/v2/myapp/web/blobs/uploads/", nil, "Basic ZW5naW5lOnNlY3JldA==")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || !strings.HasPrefix(loc, "/v2/myapp/web/blobs/uploads/") {
		t.Fatalf("start upload: %d, Location %q; want 202 and a location on the proxy", resp.StatusCode, loc)
	}
	blob := []byte("a layer")
	resp = do(t, http.MethodPut, base+loc+"&digest="+sha(blob), bytes.NewReader(blob), "")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("finish upload: %d", resp.StatusCode)
	}
	if resp := do(t, http.MethodHead, base+"/v2/myapp/web/blobs/"+sha(blob), nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD the blob: %d", resp.StatusCode)
	}
	if resp := do(t, http.MethodHead, base+"/v2/myapp/web/blobs/"+sha([]byte("never sent")), nil, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD a missing blob: %d", resp.StatusCode)
	}
	if r := p.lastRefusal(); r != nil {
		t.Errorf("a missing blob is no refusal: %v", r)
	}
	if resp := do(t, http.MethodGet, base+"/v1/apps", nil, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/apps through the proxy: %d, want 404 (only /v2/ is forwarded)", resp.StatusCode)
	}
	if n := countLog(reg.log(), "/v1/"); n != 0 {
		t.Errorf("the proxy forwarded a path outside /v2/: %v", reg.log())
	}
}

func TestProxyManagerGone(t *testing.T) {
	reg := newTestRegistry(t)
	p := startProxy(t, reg)
	reg.srv.Close()
	resp := do(t, http.MethodHead, "http://"+p.Host()+"/v2/myapp/web/blobs/sha256:00", nil, "")
	r := p.lastRefusal()
	if resp.StatusCode != http.StatusBadGateway || r == nil ||
		!strings.HasPrefix(r.Error(), "cannot reach the cluster registry at "+strings.TrimPrefix(reg.srv.URL, "https://")) {
		t.Fatalf("a gone manager: %d, refusal %v", resp.StatusCode, r)
	}
}

func do(t *testing.T, method, url string, body io.Reader, auth string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestRefusalSentences(t *testing.T) {
	cases := []struct {
		status int
		body   string
		want   string
	}{
		{401, `{"errors":[{"code":"UNAUTHORIZED","message":"admin credential required"}]}`,
			"the cluster registry refused the push without an admin credential (admin credential required): use a context with the admin token or an admin certificate (berth context create)"},
		{403, `{"errors":[{"code":"DENIED","message":"the cluster registry is full (9.9 GiB of 10 GiB used): remove old apps or raise --registry-max-size"}]}`,
			"the cluster registry refused the push: the cluster registry is full (9.9 GiB of 10 GiB used): remove old apps or raise --registry-max-size"},
		{403, `{"errors":[]}`, "the cluster registry refused the push: only an admin may push; use the admin token or certificate"},
		{413, `<html>too big</html>`,
			"the cluster registry refused a layer as too large (<html>too big</html>): make the image smaller, or raise the managers' --registry-max-size"},
		{400, `{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}`,
			"the cluster registry answered 400 bad request to PUT /v2/a/b/manifests/x (manifest invalid)"},
	}
	for _, c := range cases {
		if got := refusal(http.MethodPut, "/v2/a/b/manifests/x", c.status, []byte(c.body)).Error(); got != c.want {
			t.Errorf("%d %s:\n got %s\nwant %s", c.status, c.body, got, c.want)
		}
	}
}

func TestLayerLog(t *testing.T) {
	progress := func(cur, total int64) *jsonstream.Progress { return &jsonstream.Progress{Current: cur, Total: total} }
	msgs := []jsonstream.Message{
		{Status: "The push refers to repository [127.0.0.1:1/a/b]"},
		{ID: "aaa", Status: "Preparing"}, {ID: "bbb", Status: "Preparing"}, {ID: "ccc", Status: "Preparing"},
		{ID: "aaa", Status: "Waiting"},
		{ID: "bbb", Status: "Layer already exists"},
		{ID: "aaa", Status: "Pushing", Progress: progress(512, 2_500_000)},
		{ID: "aaa", Status: "Pushing", Progress: progress(1024, 2_500_000)},
		{ID: "ccc", Status: "Mounted from c/d"},
		{ID: "aaa", Status: "Pushing", Progress: progress(2_500_000, 2_500_000)},
		{ID: "aaa", Status: "Pushed"},
	}
	var out bytes.Buffer
	l := newLayerLog(&out)
	for _, m := range msgs {
		l.update(m)
	}
	want := `layer bbb  skipped (the cluster registry has it)
layer aaa  pushing 2.5 MB
layer ccc  mounted from another repository of the cluster registry
layer aaa  pushed
`
	if out.String() != want {
		t.Errorf("got:\n%swant:\n%s", out.String(), want)
	}
	if pushed, skipped := l.counts(); pushed != 1 || skipped != 2 {
		t.Errorf("counts: %d pushed, %d skipped; want 1, 2", pushed, skipped)
	}
}

func TestFollowNeedsTheDigest(t *testing.T) {
	aux := json.RawMessage(`{"Tag":"berth-push","Digest":"sha256:abc","Size":528}`)
	cases := []struct {
		name string
		msgs []jsonstream.Message
		want string // the manifest, or the error's start
	}{
		{"aux", []jsonstream.Message{{ID: "a", Status: "Pushed"}, {Aux: &aux}}, "sha256:abc"},
		{"no aux", []jsonstream.Message{{ID: "a", Status: "Pushed"}}, "the Docker engine's push ended without the manifest's digest"},
		{"error", []jsonstream.Message{{Error: &jsonstream.Error{Message: "blob upload unknown"}}}, "the Docker engine's push failed: blob upload unknown"},
	}
	for _, c := range cases {
		var res Result
		err := follow(context.Background(), fakeStream(c.msgs), newLayerLog(io.Discard), &res)
		got := res.Manifest
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// fakeStream is an engine's push answer of msgs.
type fakeStream []jsonstream.Message

func (f fakeStream) JSONMessages(context.Context) iter.Seq2[jsonstream.Message, error] {
	return func(yield func(jsonstream.Message, error) bool) {
		for _, m := range f {
			if !yield(m, nil) {
				return
			}
		}
	}
}

// TestProxyDropsEngineCredential: with a certificate as the credential
// (no header of the transport's), the engine's own Authorization must not
// reach the manager, which would take it for a wrong token.
func TestProxyDropsEngineCredential(t *testing.T) {
	var got []string
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = append(got, r.Header.Get("Authorization"))
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
	})
	p, err := Start(context.Background(), "https://manager.invalid:7700", rt)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	do(t, http.MethodHead, "http://"+p.Host()+"/v2/a/b/blobs/sha256:00", nil, "Basic ZW5naW5lOnNlY3JldA==")
	if len(got) != 2 || got[1] != "" {
		t.Fatalf("Authorization the manager saw: %q, want none", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
