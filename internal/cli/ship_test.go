package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/imagebuild"
	"github.com/berth-dev/berth/internal/imagepush"
	"github.com/berth-dev/berth/internal/testimage"
	"github.com/berth-dev/berth/internal/types"
	"github.com/moby/moby/client"
)

// shipHarness is the default app plus the kinds of image up must tell
// apart: pulled from a registry, only on this engine, never pulled, exec.
func shipHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.loader.app.Services = append(h.loader.app.Services,
		&types.Service{Name: "cache", Mode: types.ModeReplicated, Replicas: 1, Image: "redis:7"},
		&types.Service{Name: "dev", Mode: types.ModeReplicated, Replicas: 1, Image: "myapp:dev"},
		&types.Service{Name: "pinned", Mode: types.ModeReplicated, Replicas: 1, Image: "mine:never", PullPolicy: types.PullNever},
		&types.Service{Name: "tool", Mode: types.ModeReplicated, Replicas: 1, Driver: types.DriverExec, Image: "myapp:dev",
			Command: []string{"true"}},
	)
	h.images.have["redis:7"] = "sha256:redis"
	h.images.pulled = map[string]bool{"redis:7": true}
	h.images.have["myapp:dev"] = "sha256:dev"
	h.images.have["mine:never"] = "sha256:never"
	return h
}

func TestUpPushesBuiltAndLocalOnlyImages(t *testing.T) {
	f, url := newFakeManager(t)
	h := shipHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
	if want := []string{"hello-api -> hello/api", "myapp:dev -> hello/dev"}; !slices.Equal(h.images.pusher.pushes, want) {
		t.Errorf("pushes %v, want %v (a pulled image, pull_policy never and exec are not pushed)", h.images.pusher.pushes, want)
	}
	if h.images.pusher.target != url {
		t.Errorf("pushed to %s, want the manager %s", h.images.pusher.target, url)
	}
	app := f.apps["hello"]
	for _, c := range []struct{ svc, image, id string }{
		{"api", "hello/api@" + fakeManifest("sha256:built-hello-api", "hello/api"), "sha256:built-hello-api"},
		{"dev", "hello/dev@" + fakeManifest("sha256:dev", "hello/dev"), "sha256:dev"},
		{"cache", "", ""},
		{"pinned", "", ""},
		{"tool", "", ""},
	} {
		s := app.Service(c.svc)
		if s.ClusterImage != c.image || s.ImageID != c.id {
			t.Errorf("service %s: ClusterImage %q ImageID %q, want %q %q", c.svc, s.ClusterImage, s.ImageID, c.image, c.id)
		}
	}
	wantPut := imagePut{App: "hello", Service: "dev", Repo: "hello/dev", Digest: fakeManifest("sha256:dev", "hello/dev")}
	if puts := f.images.puts; len(puts) != 2 || puts[1] != wantPut {
		t.Errorf("PUT /v1/images: %+v, want the api's then %+v", puts, wantPut)
	}
	errOut := h.errOut.String()
	for _, want := range []string{
		"Pushing api (image hello-api) to the cluster registry\n  layer aaa  pushed\n  layer bbb  skipped (the cluster registry has it)\n" +
			"Pushed api: 1 layer sent, 1 skipped (hello/api@sha256:" + strings.TrimPrefix(fakeManifest("sha256:built-hello-api", "hello/api"), "sha256:")[:12] + ")\n",
		"Pushing dev's image myapp:dev to the cluster registry: it is on this machine's engine and in no registry the nodes could pull from\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "Waiting for") || f.images.gets != 0 {
		t.Errorf("one manager holds the images at once, yet up waited (%d GETs):\n%s", f.images.gets, errOut)
	}
}

// TestUpWaitsForTwoManagers: with three managers, up submits once two
// hold every image, and says how far they are as that changes.
func TestUpWaitsForTwoManagers(t *testing.T) {
	f, url := newFakeManager(t)
	f.members = []api.Member{{ID: "m1"}, {ID: "m2"}, {ID: "m3"}}
	f.images.maxReplicas = 3
	h := newHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
	errOut := h.errOut.String()
	if !strings.Contains(errOut, "Waiting for 2 managers to hold each image: api 1/2\nWaiting for 2 managers to hold each image: api 2/2\n") {
		t.Errorf("stderr lacks the replica progress:\n%s", errOut)
	}
	if f.apps["hello"] == nil {
		t.Error("the app was not submitted")
	}
}

func TestUpReplicaWaitIsBounded(t *testing.T) {
	f, url := newFakeManager(t)
	f.members = []api.Member{{ID: "m1"}, {ID: "m2"}}
	h := newHarness(t)
	if code := h.run(t, "up", "-d", "--wait-timeout", "1s", "--addr", url); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := "error: the pushed images are not on 2 managers after 1s (api 1/2): " +
		"check the managers with berth cluster members and their logs, then run berth up again; nothing was submitted\n"
	if !strings.HasSuffix(h.errOut.String(), want) {
		t.Errorf("stderr %q\nwant it to end %q", h.errOut, want)
	}
	if f.apps["hello"] != nil {
		t.Error("the app was submitted")
	}
}

func TestUpCannotPush(t *testing.T) {
	cases := []struct {
		name    string
		open    error
		push    error
		refuse  string
		want    string
		notWant string
	}{
		{name: "older manager", open: fmt.Errorf("the manager at x answered 404 on /v2/: %w", imagepush.ErrNoRegistry),
			want: "error: the manager at URL has no image registry (it runs an older berth), so the images of api " +
				"cannot reach the nodes: upgrade the managers, or push the images to a registry the nodes can pull from " +
				"and name it in image:; nothing was submitted\n"},
		{name: "refused", push: &imagepush.Refusal{Status: 401, Message: "authentication required"},
			want: "error: service api: the cluster registry refused the push without an admin credential (authentication required): " +
				"use a context with the admin token or an admin certificate (berth context create)\n"},
		{name: "engine gone", push: fmt.Errorf("push hello-api: %w", &errEngine{host: "unix:///var/run/docker.sock", err: syscall.ECONNREFUSED}),
			want: "error: service api: push hello-api: cannot reach the Docker engine at unix:///var/run/docker.sock, which berth " +
				"builds and pushes images with: start Docker, or point DOCKER_HOST at a running engine\n",
			notWant: "no berth manager"},
		{name: "record refused", refuse: "digest: the manifest is not in this manager's registry",
			want: "error: service api: record its image hello/api@"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, url := newFakeManager(t)
			f.images.refuse = c.refuse
			h := newHarness(t)
			h.images.pusher.openErr, h.images.pusher.pushErr = c.open, c.push
			if code := h.run(t, "up", "-d", "--addr", url); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			want := strings.ReplaceAll(c.want, "URL", url)
			if got := h.errOut.String(); !strings.Contains(got, want) || (c.notWant != "" && strings.Contains(got, c.notWant)) {
				t.Errorf("stderr %q\nwant %q", got, want)
			}
			if f.apps["hello"] != nil {
				t.Error("the app was submitted")
			}
		})
	}
}

// TestPullPolicyBuildAlwaysBuilds: pull_policy build builds like --build,
// and --no-build still wins, as in Compose.
func TestPullPolicyBuildAlwaysBuilds(t *testing.T) {
	_, url := newFakeManager(t)
	for _, c := range []struct {
		args   []string
		builds int
	}{{nil, 1}, {[]string{"--no-build"}, 0}} {
		h := newHarness(t)
		h.loader.app.Services[1].PullPolicy = types.PullBuild
		h.images.have["hello-api"] = "sha256:old"
		if code := h.run(t, append([]string{"up", "-d", "--addr", url}, c.args...)...); code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, h.errOut)
		}
		if len(h.images.builds) != c.builds {
			t.Errorf("%v: %d builds, want %d", c.args, len(h.images.builds), c.builds)
		}
	}
}

func TestEngineOnThisMachine(t *testing.T) {
	for host, want := range map[string]bool{
		"unix:///var/run/docker.sock": true, "npipe:////./pipe/docker_engine": true,
		"tcp://127.0.0.1:2375": true, "tcp://localhost:2375": true, "tcp://[::1]:2375": true,
		"tcp://10.0.0.9:2376": false, "ssh://me@build-box": false, "not a host": false,
	} {
		if got := engineOnThisMachine(host); got != want {
			t.Errorf("%s: %v, want %v", host, got, want)
		}
	}
}

func TestIndentWriter(t *testing.T) {
	var b strings.Builder
	w := &indentWriter{w: &b, indent: "  "}
	for _, s := range []string{"a\nb", "c\n", "\nd\n"} {
		fmt.Fprint(w, s)
	}
	if want := "  a\n  bc\n  \n  d\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestImageRepoNames(t *testing.T) {
	if got, err := imageRepo("shop", "web-2"); err != nil || got != "shop/web-2" {
		t.Errorf("shop/web-2: %q, %v", got, err)
	}
	// Registries take lowercase names only; the one rule (types.ImageRepo)
	// lowercases, as Compose's own image names are.
	if got, err := imageRepo("shop", "Web"); err != nil || got != "shop/web" {
		t.Errorf("Web: %q, %v", got, err)
	}
	if _, err := imageRepo("shop", "we b"); err == nil {
		t.Errorf("a space in a repository name: no error")
	}
}

// TestEngineRefusedIsNoManager: an engine that refuses the connection is
// reported as the engine, with what to do, not as a missing manager (both
// are ECONNREFUSED underneath).
func TestEngineRefusedIsNoManager(t *testing.T) {
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1") // nothing listens on port 1
	d := &dockerImages{}
	defer d.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := d.Build(t.Context(), imagebuild.Options{Context: dir, Tag: "x"}, nil)
	h := newHarness(t)
	got := describeError(fmt.Errorf("service api: %w", err), h.e)
	want := "service api: cannot reach the Docker engine at tcp://127.0.0.1:1, which berth builds and pushes images with: " +
		"start Docker, or point DOCKER_HOST at a running engine"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestUpDevClusterSkipsPushes: the dev cluster's one node shares this
// engine, so only a pull_policy always image is pushed; with a second
// node, every one is.
func TestUpDevClusterSkipsPushes(t *testing.T) {
	f, url := newFakeManager(t)
	f.dev = true
	h := shipHarness(t)
	h.loader.app.Services[1].PullPolicy = types.PullAlways // api
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
	if want := []string{"hello-api -> hello/api"}; !slices.Equal(h.images.pusher.pushes, want) {
		t.Errorf("pushes %v, want %v", h.images.pusher.pushes, want)
	}
	if want := "Not pushing the images of dev: the dev cluster's one node uses this machine's engine, which has them\n"; !strings.Contains(h.errOut.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, h.errOut)
	}
	if s := f.apps["hello"].Service("dev"); s.ClusterImage != "" {
		t.Errorf("dev has ClusterImage %q", s.ClusterImage)
	}

	f.nodes = append(f.nodes, &types.Node{ID: "node2id0000", Name: "other"})
	h = shipHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
	if len(h.images.pusher.pushes) != 2 {
		t.Errorf("two nodes: pushes %v, want both images", h.images.pusher.pushes)
	}
}

func TestPulledAs(t *testing.T) {
	hub := "nginx@sha256:" + strings.Repeat("a", 64)
	for _, c := range []struct {
		ref     string
		digests []string
		want    bool
	}{
		{"nginx:1.25", []string{hub}, true},
		{"docker.io/library/nginx", []string{hub}, true},
		{"myapp:dev", nil, false},
		{"myapp:dev", []string{hub}, false}, // pulled as nginx, tagged myapp:dev
		{"myapp:dev", []string{"127.0.0.1:41234/hello/web@sha256:" + strings.Repeat("b", 64)}, false}, // an interrupted push's leftover
		{"registry.example:5000/team/app:1", []string{"registry.example:5000/team/app@sha256:" + strings.Repeat("c", 64)}, true},
	} {
		if got := pulledAs(c.ref, c.digests); got != c.want {
			t.Errorf("%s %v: %v, want %v", c.ref, c.digests, got, c.want)
		}
	}
}

// TestLocalOnlyOnARealEngine: the test image, built here, is local-only;
// a tag the engine lacks is not (there is nothing to push).
func TestLocalOnlyOnARealEngine(t *testing.T) {
	ctx := t.Context()
	d := &dockerImages{}
	defer d.Close()
	cli, err := d.engine()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		t.Skipf("no docker engine: %v", err)
	}
	img, err := testimage.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]bool{img: true, "berth-test/never-built:x": false} {
		if got, err := d.LocalOnly(ctx, ref); err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", ref, got, err, want)
		}
	}
}
