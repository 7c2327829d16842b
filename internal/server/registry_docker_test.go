package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/testimage"
)

// loopbackProxy forwards to target with a credential, as the CLI's push
// proxy (admin token) and an agent's pull-through endpoint (node
// certificate) do: the engine talks plain HTTP to a loopback registry.
func loopbackProxy(t *testing.T, target string, tr http.RoundTripper, token string) string {
	t.Helper()
	u, _ := url.Parse(target)
	p := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			if token != "" {
				r.Out.Header.Set("Authorization", "Bearer "+token)
			}
		},
		Transport: tr,
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func dockerCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return string(out), err
}

// TestDockerPushAndPullThroughTheManager: the engine's own push reaches a
// manager's API with the admin token and the image is recorded; the
// engine's pull by digest reaches the cluster port with a worker's
// certificate; without a credential the engine is refused.
func TestDockerPushAndPullThroughTheManager(t *testing.T) {
	if err := exec.Command("docker", "version").Run(); err != nil {
		t.Skip("no Docker engine:", err)
	}
	s, c := startServer(t)
	ctx := context.Background()
	img, err := testimage.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	push := loopbackProxy(t, "http://"+s.Addr(), http.DefaultTransport, s.AdminToken())
	ref := push + "/shop/web:berth-push"
	if out, err := dockerCmd(t, "tag", img, ref); err != nil {
		t.Fatalf("docker tag: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = dockerCmd(t, "rmi", ref) })
	out, err := dockerCmd(t, "push", ref)
	if err != nil {
		t.Fatalf("docker push: %v: %s", err, out)
	}
	m := regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no digest in the push's output: %s", out)
	}
	rec, err := c.PutImage(ctx, api.ImagePut{App: "shop", Service: "web", Digest: m[1]})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := dockerCmd(t, "image", "inspect", "--format", "{{.Id}}", img)
	if rec.Config != strings.TrimSpace(id) {
		t.Errorf("recorded config %s, want the image ID %s", rec.Config, strings.TrimSpace(id))
	}

	worker := joinAs(t, s, "w1", "", nil)
	pullTr := &http.Transport{TLSClientConfig: worker.ClientTLS(pki.RoleManager.ServerName())}
	pull := loopbackProxy(t, "https://"+s.ClusterAddr(), pullTr, "")
	byDigest := pull + "/shop/web@" + m[1]
	if out, err := dockerCmd(t, "pull", byDigest); err != nil {
		t.Fatalf("docker pull through the cluster port: %v: %s", err, out)
	}
	_, _ = dockerCmd(t, "rmi", byDigest)

	// No credential: the engine gets the 401 and its Basic challenge,
	// and says it has no credentials.
	anon := loopbackProxy(t, "http://"+s.Addr(), http.DefaultTransport, "")
	if out, err := dockerCmd(t, "pull", anon+"/shop/web@"+m[1]); err == nil || !strings.Contains(out, "no basic auth credentials") {
		t.Errorf("a pull without a credential: %v: %s", err, out)
	}
}
