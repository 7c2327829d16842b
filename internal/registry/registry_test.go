package registry

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/berth-dev/berth/internal/testimage"
)

// serve starts r on 127.0.0.1 granting every request access a: the fake of
// the server, which decides access from credentials.
func serve(t *testing.T, r *Registry, a Access) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.Serve(w, req, a) }))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func newRegistry(t *testing.T, max int64) *Registry {
	t.Helper()
	r, err := New(context.Background(), Config{Dir: t.TempDir(), MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func needDocker(t *testing.T) {
	t.Helper()
	if err := exec.Command("docker", "version").Run(); err != nil {
		t.Skip("no Docker engine:", err)
	}
}

func docker(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return string(out), err
}

var pushDigestRE = regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`)

// pushTestImage tags the test image under host and pushes it with the
// engine's own push; it returns the reference and the push's output.
func pushTestImage(t *testing.T, host, repo string) (ref, out string, err error) {
	t.Helper()
	img, err := testimage.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ref = host + "/" + repo + ":t"
	if out, err := docker(t, "tag", img, ref); err != nil {
		t.Fatalf("docker tag: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = docker(t, "rmi", ref) })
	out, err = docker(t, "push", ref)
	return ref, out, err
}

func TestDockerPushAndPull(t *testing.T) {
	needDocker(t)
	r := newRegistry(t, 0)
	host := serve(t, r, Push)
	ref, out, err := pushTestImage(t, host, "app1/web")
	if err != nil {
		t.Fatalf("docker push: %v: %s", err, out)
	}
	m := pushDigestRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no digest in the push's output: %s", out)
	}
	dgst := m[1]
	mt, payload, err := r.GetManifest(context.Background(), "app1/web", dgst)
	if err != nil {
		t.Fatal(err)
	}
	man, err := ParseManifest(mt, payload)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range man.Blobs() {
		if ok, err := r.HasBlob(context.Background(), "app1/web", b.Digest); !ok || err != nil {
			t.Errorf("blob %s of the pushed image: present %v, err %v", b.Digest, ok, err)
		}
	}
	// Pull by digest, as agents do, after the tag is gone from the engine.
	if out, err := docker(t, "rmi", ref); err != nil {
		t.Fatalf("docker rmi: %v: %s", err, out)
	}
	byDigest := host + "/app1/web@" + dgst
	if out, err := docker(t, "pull", byDigest); err != nil {
		t.Fatalf("docker pull: %v: %s", err, out)
	}
	_, _ = docker(t, "rmi", byDigest)
}

func TestDockerPushPastTheLimit(t *testing.T) {
	needDocker(t)
	r := newRegistry(t, 1<<20) // the test image is about 6 MB
	host := serve(t, r, Push)
	_, out, err := pushTestImage(t, host, "app1/big")
	if err == nil {
		t.Fatalf("a push past the limit succeeded: %s", out)
	}
	if !strings.Contains(out, "denied") || !strings.Contains(out, "the cluster registry is full") || !strings.Contains(out, "--registry-max-size") {
		t.Fatalf("the push failed without saying the registry is full: %s", out)
	}
	if used, _ := r.Usage(); used > 1<<20 {
		t.Errorf("the registry holds %d bytes, past its limit of %d", used, 1<<20)
	}
}

// registryErrors decodes the registry's JSON error answer.
func registryErrors(t *testing.T, resp *http.Response) []struct{ Code, Message string } {
	t.Helper()
	var body struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("answer %d is not a registry error: %v", resp.StatusCode, err)
	}
	return body.Errors
}

func TestAccess(t *testing.T) {
	r := newRegistry(t, 0)
	tests := []struct {
		name       string
		access     Access
		method     string
		path       string
		wantStatus int
		wantCode   string
	}{
		{"no credential", NoAccess, "GET", "/v2/", 401, "UNAUTHORIZED"},
		{"no credential push", NoAccess, "POST", "/v2/a/b/blobs/uploads/", 401, "UNAUTHORIZED"},
		{"pull may read", Pull, "GET", "/v2/", 200, ""},
		{"pull may not push", Pull, "POST", "/v2/a/b/blobs/uploads/", 403, "DENIED"},
		{"pull may not put a manifest", Pull, "PUT", "/v2/a/b/manifests/x", 403, "DENIED"},
		{"push may start an upload", Push, "POST", "/v2/a/b/blobs/uploads/", 202, ""},
		{"a pull may not cancel an upload", Pull, "DELETE", "/v2/a/b/blobs/uploads/x", 405, "UNSUPPORTED"},
		{"nobody deletes", Push, "DELETE", "/v2/a/b/manifests/sha256:" + strings.Repeat("0", 64), 405, "UNSUPPORTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := serve(t, r, tt.access)
			req, _ := http.NewRequest(tt.method, "http://"+host+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if loc := resp.Header.Get("Location"); tt.wantStatus == 202 && !strings.HasPrefix(loc, "/v2/") {
				t.Errorf("upload location %q is not relative: a client behind a proxy could not follow it", loc)
			}
			if tt.wantStatus == 401 && resp.Header.Get("WWW-Authenticate") != `Basic realm="berth"` {
				t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
			if tt.wantCode != "" {
				errs := registryErrors(t, resp)
				if len(errs) != 1 || errs[0].Code != tt.wantCode || errs[0].Message == "" {
					t.Errorf("errors %+v, want one %s with a message", errs, tt.wantCode)
				}
			}
		})
	}
}

// upload sends body as one blob the way clients finish an upload: POST
// to start it, PUT with the digest and the bytes.
func upload(t *testing.T, host, repo, body string) *http.Response {
	t.Helper()
	resp, err := http.Post("http://"+host+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start an upload: status %d", resp.StatusCode)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", digestOf(body))
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestUploadPastTheLimit(t *testing.T) {
	r := newRegistry(t, 64<<10)
	host := serve(t, r, Push)
	resp := upload(t, host, "a/b", strings.Repeat("x", 100<<10))
	errs := registryErrors(t, resp)
	if resp.StatusCode != 403 || len(errs) != 1 || errs[0].Code != "DENIED" || !strings.Contains(errs[0].Message, "the cluster registry is full (") {
		t.Fatalf("status %d, errors %+v; want 403 DENIED saying the registry is full", resp.StatusCode, errs)
	}
	// Under the limit, the same upload goes through.
	if resp := upload(t, host, "a/b", strings.Repeat("y", 10<<10)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("a small upload: status %d, want 201", resp.StatusCode)
	}
	// Once full, an upload is refused before it starts.
	r.max = 1
	resp, err := http.Post("http://"+host+"/v2/a/b/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an upload into a full registry: status %d, want 403", resp.StatusCode)
	}
}

// TestLibraryLog: a client's miss (a HEAD of a blob the registry lacks,
// as every push makes) stays out of the manager's log; the library's own
// warnings reach it.
func TestLibraryLog(t *testing.T) {
	var buf syncBuffer
	r, err := New(context.Background(), Config{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	host := serve(t, r, Push)
	resp, err := http.Head("http://" + host + "/v2/a/b/blobs/" + digestOf("nothing"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD of a missing blob: %d", resp.StatusCode)
	}
	if s := buf.String(); strings.Contains(s, "completed with error") {
		t.Errorf("a client's miss was logged: %s", s)
	}
	logrus.WithField("err.message", "boom").Error("storage failed")
	if s := buf.String(); !strings.Contains(s, "storage failed") || !strings.Contains(s, "boom") {
		t.Errorf("the library's error did not reach the log: %q", s)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUploadKeepsTheDiskReserve: an upload that would leave the disk with
// less than the reserve is refused, however much the limit allows.
func TestUploadKeepsTheDiskReserve(t *testing.T) {
	var free atomic.Int64
	free.Store(1 << 30)
	r, err := New(context.Background(), Config{Dir: t.TempDir(), Reserve: 512 << 20,
		FreeSpace: func(string) (uint64, bool, error) { return uint64(free.Load()), true, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	host := serve(t, r, Push)
	if resp := upload(t, host, "a/b", strings.Repeat("x", 10<<10)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("an upload with room on the disk: %d", resp.StatusCode)
	}
	free.Store(512<<20 + 4<<10) // 4 KiB above the reserve
	resp := upload(t, host, "a/b", strings.Repeat("y", 10<<10))
	errs := registryErrors(t, resp)
	if resp.StatusCode != 403 || len(errs) != 1 || errs[0].Code != "DENIED" || !strings.Contains(errs[0].Message, "Raft log") {
		t.Fatalf("status %d, errors %+v; want 403 DENIED naming the reserve", resp.StatusCode, errs)
	}
}

// TestCancelUpload: a pusher may cancel its upload (clients do when a push
// fails); the library then forgets it.
func TestCancelUpload(t *testing.T) {
	r := newRegistry(t, 0)
	host := serve(t, r, Push)
	resp, err := http.Post("http://"+host+"/v2/a/b/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodDelete, "http://"+host+resp.Header.Get("Location"), nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("cancel an upload: status %d, want 204", resp.StatusCode)
	}
}
