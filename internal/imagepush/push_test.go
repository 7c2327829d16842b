package imagepush

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/imagebuild"
	"github.com/moby/moby/client"
)

func engine(t *testing.T) *client.Client {
	t.Helper()
	cli, err := imagebuild.NewClient("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Skipf("no docker engine: %v", err)
	}
	return cli
}

// smallImage builds a FROM scratch image of `layers` layers of random
// bytes (new to every registry) and returns its tag.
func smallImage(t *testing.T, cli *client.Client, layers int) string {
	t.Helper()
	dir := t.TempDir()
	var df strings.Builder
	df.WriteString("FROM scratch\n")
	for i := range layers {
		name := filepath.Join(dir, "f"+string(rune('a'+i)))
		if err := os.WriteFile(name, []byte(rand.Text()+rand.Text()), 0o644); err != nil {
			t.Fatal(err)
		}
		df.WriteString("COPY " + filepath.Base(name) + " /" + filepath.Base(name) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := "berth-test/imagepush:" + strings.ToLower(rand.Text()[:12])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := imagebuild.Build(ctx, cli, imagebuild.Options{Context: dir, Tag: tag}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	return tag
}

func startProxy(t *testing.T, reg *testRegistry) *Proxy {
	t.Helper()
	p, err := Start(context.Background(), reg.srv.URL, reg.transport(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPushTwiceSkipsEveryLayer(t *testing.T) {
	cli := engine(t)
	const layers = 3
	tag := smallImage(t, cli, layers)
	reg := newTestRegistry(t)
	p := startProxy(t, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var first bytes.Buffer
	res, err := p.Push(ctx, cli, tag, "myapp/web", &first)
	if err != nil {
		t.Fatal(err)
	}
	img, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if res.Config != img.ID || !strings.HasPrefix(res.Manifest, "sha256:") || res.Pushed != layers || res.Skipped != 0 {
		t.Fatalf("first push: %+v, want config %s, %d layers pushed; progress:\n%s", res, img.ID, layers, first.String())
	}
	if n := strings.Count(first.String(), "\n"); n > 2*layers || strings.Contains(first.String(), "Waiting") {
		t.Errorf("progress is not one line per layer state change:\n%s", first.String())
	}
	if got := countLog(reg.log(), "GET /v2/myapp/web/manifests/"+res.Manifest); got != 0 {
		t.Errorf("the push read a manifest back (%d)", got)
	}
	t.Logf("first push:\n%s", first.String())
	assertManifest(t, reg, "myapp/web", res.Manifest)
	assertNoPushRefs(t, cli, tag)

	before := len(reg.log())
	var second bytes.Buffer
	again, err := p.Push(ctx, cli, tag, "myapp/web", &second)
	if err != nil {
		t.Fatal(err)
	}
	if again.Manifest != res.Manifest || again.Pushed != 0 || again.Skipped != layers {
		t.Fatalf("second push: %+v, want manifest %s with all %d layers skipped; progress:\n%s", again, res.Manifest, layers, second.String())
	}
	// Nothing but checks and the manifest: no upload started.
	if n := countLog(reg.log()[before:], "POST"); n != 0 {
		t.Errorf("the second push started %d uploads: %v", n, reg.log()[before:])
	}
	t.Logf("second push:\n%s\nrequests: %v", second.String(), reg.log()[before:])
	assertNoPushRefs(t, cli, tag)
}

// assertManifest fetches repo@digest from the registry, as a node would.
func assertManifest(t *testing.T, reg *testRegistry, repo, digest string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, reg.srv.URL+"/v2/"+repo+"/manifests/"+digest, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err := reg.transport(true).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s@%s: %d", repo, digest, resp.StatusCode)
	}
}

// assertNoPushRefs: the push left no tag or digest of the proxy on the
// user's image.
func assertNoPushRefs(t *testing.T, cli *client.Client, tag string) {
	t.Helper()
	img, err := cli.ImageInspect(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(img.RepoTags, img.RepoDigests...) {
		if strings.HasPrefix(r, "127.0.0.1:") {
			t.Errorf("image %s still has %s", tag, r)
		}
	}
}

func TestPushRefused(t *testing.T) {
	cli := engine(t)
	tag := smallImage(t, cli, 1)
	cases := []struct {
		name   string
		refuse func(r *http.Request) int
		status string // as the registry's log shows it
		want   string
	}{
		{"401 on upload", func(r *http.Request) int {
			if r.Method == http.MethodPost {
				return http.StatusUnauthorized
			}
			return 0
		}, " 401", "the cluster registry refused the push without an admin credential (authentication required): use a context with the admin token"},
		{"413 on a layer", func(r *http.Request) int {
			if r.Method == http.MethodPatch || r.Method == http.MethodPut {
				return http.StatusRequestEntityTooLarge
			}
			return 0
		}, " 413", "the cluster registry refused a layer as too large: make the image smaller, or raise the managers' --registry-max-size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			p := startProxy(t, reg)
			reg.setRefuse(c.refuse)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			_, err := p.Push(ctx, cli, tag, "myapp/web", &bytes.Buffer{})
			var r *Refusal
			if !errors.As(err, &r) || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("push: %v\nwant a refusal starting %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("not one sentence: %q", err)
			}
			// The push stops at the refusal: the engine would retry it
			// for a minute, to the same answer.
			if n := countLog(reg.log(), c.status); n != 1 {
				t.Errorf("the registry refused %d requests, want 1 (no retries): %v", n, reg.log())
			}
			assertNoPushRefs(t, cli, tag)
		})
	}
}

func TestPushEngineUnreachable(t *testing.T) {
	reg := newTestRegistry(t)
	p := startProxy(t, reg)
	cli, err := imagebuild.NewClient("unix://" + filepath.Join(t.TempDir(), "no-docker.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	_, err = p.Push(context.Background(), cli, "myapp:dev", "myapp/web", &bytes.Buffer{})
	if !errors.Is(err, ErrEngine) {
		t.Fatalf("push with no engine: %v, want ErrEngine", err)
	}
}
