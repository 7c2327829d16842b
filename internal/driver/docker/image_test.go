package docker

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/testimage"
	"github.com/berth-dev/berth/internal/testregistry"
	"github.com/berth-dev/berth/internal/types"
)

func TestPullTracker(t *testing.T) {
	msg := func(id, status string, cur, total int64) jsonstream.Message {
		m := jsonstream.Message{ID: id, Status: status}
		if total > 0 {
			m.Progress = &jsonstream.Progress{Current: cur, Total: total}
		}
		return m
	}
	steps := []struct {
		msg     jsonstream.Message
		want    string
		changed bool
	}{
		{msg("app/web", "Pulling from app/web", 0, 0), "pulling image web: 0 of 0 layers", false},
		{msg("a", "Pulling fs layer", 0, 0), "pulling image web: 0 of 1 layers", true},
		{msg("b", "Pulling fs layer", 0, 0), "pulling image web: 0 of 2 layers", true},
		{msg("c", "Already exists", 0, 0), "pulling image web: 1 of 3 layers", true},
		{msg("a", "Downloading", 20e6, 60e6), "pulling image web: 1 of 3 layers, 20 MB of 60 MB", true},
		{msg("b", "Downloading", 1500, 40e6), "pulling image web: 1 of 3 layers, 20 MB of 100 MB", true},
		{msg("b", "Downloading", 1600, 40e6), "pulling image web: 1 of 3 layers, 20 MB of 100 MB", false},
		{msg("a", "Download complete", 0, 0), "pulling image web: 1 of 3 layers, 60 MB of 100 MB", true},
		{msg("a", "Extracting", 5e6, 60e6), "pulling image web: 1 of 3 layers, 60 MB of 100 MB", false},
		{msg("a", "Pull complete", 0, 0), "pulling image web: 2 of 3 layers, 60 MB of 100 MB", true},
		{msg("b", "Pull complete", 0, 0), "pulling image web: 3 of 3 layers, 100 MB of 100 MB", true},
		{msg("", "Digest: sha256:abc", 0, 0), "pulling image web: 3 of 3 layers, 100 MB of 100 MB", false},
	}
	tr := newPullTracker("web")
	for i, s := range steps {
		if changed := tr.add(s.msg); changed != s.changed {
			t.Errorf("step %d (%s %s): changed = %v, want %v", i, s.msg.ID, s.msg.Status, changed, s.changed)
		}
		if got := tr.String(); got != s.want {
			t.Errorf("step %d: %q, want %q", i, got, s.want)
		}
	}
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1500: "2 kB", 40e6: "40 MB", 999_400_000: "999 MB", 2.5e9: "2.5 GB"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestPullGroupJoins: a second pull of a reference under way waits for the
// first instead of pulling again, and hears its progress.
func TestPullGroupJoins(t *testing.T) {
	var g pullGroup
	var pulls atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	pull := func(progress func(string)) error {
		pulls.Add(1)
		progress("pulling image web: 0 of 1 layers")
		close(started)
		<-release
		return errors.New("manifest unknown")
	}
	var heard []string
	var mu sync.Mutex
	errs := make(chan error, 2)
	ctx := context.Background()
	go func() { errs <- g.do(ctx, "r", nil, pull) }()
	<-started
	go func() {
		errs <- g.do(ctx, "r", func(s string) { mu.Lock(); heard = append(heard, s); mu.Unlock() }, pull)
	}()
	// The joiner hears the latest word as it joins.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(heard)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second caller heard nothing of the pull under way")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	for range 2 {
		if err := <-errs; err == nil || err.Error() != "manifest unknown" {
			t.Errorf("err = %v, want the one pull's error", err)
		}
	}
	if n := pulls.Load(); n != 1 {
		t.Errorf("%d pulls, want 1", n)
	}
}

// clusterImage is an image of the test app made in memory and served by a
// plain-HTTP registry on loopback, standing in for the agent's endpoint.
type clusterImage struct {
	img  *testregistry.Image
	reg  *testregistry.Registry
	addr string
}

func newClusterImage(e *env, cli *client.Client) *clusterImage {
	e.t.Helper()
	bin, err := testimage.AppBinary(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		e.t.Fatal(err)
	}
	// A random file makes the image one no engine has yet.
	img, err := testregistry.NewImage([]string{testimage.ImageBinary},
		testregistry.File{Name: strings.TrimPrefix(testimage.ImageBinary, "/"), Data: data}, testregistry.RandomFile("nonce", 64))
	if err != nil {
		e.t.Fatal(err)
	}
	reg := testregistry.New()
	reg.Add(e.app+"/web", img)
	srv := httptest.NewServer(reg)
	e.t.Cleanup(srv.Close)
	e.t.Cleanup(func() {
		// The app's containers first: an image in use stays, untagged.
		cleanupApp(cli, e.app)
		_, _ = cli.ImageRemove(context.Background(), img.ConfigDigest, client.ImageRemoveOptions{Force: true})
	})
	return &clusterImage{img: img, reg: reg, addr: srv.Listener.Addr().String()}
}

// service points s at the cluster image as the CLI pins a pushed one.
func (c *clusterImage) service(e *env, policy string) func(*types.Service) {
	return func(s *types.Service) {
		s.Image, s.ImageID = "web:dev", c.img.ConfigDigest
		s.ClusterImage, s.PullPolicy = e.app+"/web@"+c.img.Digest, policy
	}
}

// pulls counts the engine's pulls from the registry: each starts with a
// GET /v2/ (a pull by digest of an image it holds stops there).
func (c *clusterImage) pulls() int {
	n := 0
	for _, r := range c.reg.Requests() {
		if r == "GET /v2/" {
			n++
		}
	}
	return n
}

// TestClusterImagePull: a service with a ClusterImage is pulled through
// the endpoint when the engine lacks it and run from its pinned image ID,
// with progress told; pull_policy decides when the engine pulls.
func TestClusterImagePull(t *testing.T) {
	e := newEnv(t)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ci := newClusterImage(e, cli)
	d, err := New(e.ctx, Config{NodeID: e.app + "-n1", DataDir: t.TempDir(), Registry: ci.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	// never, and the node lacks it: no pull, an error naming the image.
	_, err = d.Start(e.ctx, e.task("web", 1, ci.service(e, types.PullNever)))
	if !errors.Is(err, driver.ErrImageNotFound) || !strings.Contains(err.Error(), "web:dev") || !strings.Contains(err.Error(), "pull_policy is never") {
		t.Errorf("never, missing: %v, want ErrImageNotFound naming web:dev and the policy", err)
	}
	if n := ci.pulls(); n != 0 {
		t.Fatalf("pull_policy never pulled (%d pulls)", n)
	}

	// missing: pulled once, run from the image ID, progress told.
	cfg := e.task("web", 2, ci.service(e, ""))
	var mu sync.Mutex
	var heard []string
	cfg.Progress = func(s string) { mu.Lock(); heard = append(heard, s); mu.Unlock() }
	st := e.start(d, cfg)
	res, err := cli.ContainerInspect(e.ctx, st.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Container.Image != ci.img.ConfigDigest {
		t.Errorf("container made from %s, want the pinned image %s", res.Container.Image, ci.img.ConfigDigest)
	}
	mu.Lock()
	if len(heard) == 0 || !strings.HasPrefix(heard[0], "pulling image web:dev") {
		t.Errorf("progress heard %q, want it to start with the pull of web:dev", heard)
	}
	mu.Unlock()
	if n := ci.pulls(); n != 1 {
		t.Errorf("%d pulls for the first start, want 1", n)
	}

	// missing, present: no pull. always, present: pulled again.
	e.start(d, e.task("web", 3, ci.service(e, types.PullMissing)))
	if n := ci.pulls(); n != 1 {
		t.Errorf("pull_policy missing pulled a present image (%d pulls)", n)
	}
	e.start(d, e.task("web", 4, ci.service(e, types.PullAlways)))
	if n := ci.pulls(); n != 2 {
		t.Errorf("pull_policy always did not pull a present image (%d pulls, want 2): %v", n, ci.reg.Requests())
	}
}

// TestClusterImageNowhere: a cluster image no manager has, or one the node
// cannot pull (its endpoint off), fails the start naming the image.
func TestClusterImageNowhere(t *testing.T) {
	e := newEnv(t)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ci := newClusterImage(e, cli)
	ci.reg.Lose(ci.img.Digest)
	d, err := New(e.ctx, Config{NodeID: e.app + "-n1", DataDir: t.TempDir(), Registry: ci.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = d.Start(e.ctx, e.task("web", 1, ci.service(e, "")))
	if !errors.Is(err, driver.ErrImageNotFound) || !strings.Contains(err.Error(), "web:dev") || !strings.Contains(err.Error(), "manifest unknown") {
		t.Errorf("image nowhere: %v, want ErrImageNotFound naming web:dev and the registry's answer", err)
	}

	off := e.driver("n2") // no Registry: the agent's endpoint is off
	_, err = off.Start(e.ctx, e.task("web", 2, ci.service(e, "")))
	if !errors.Is(err, driver.ErrImageNotFound) || !strings.Contains(err.Error(), "web:dev") || !strings.Contains(err.Error(), "--registry-port") {
		t.Errorf("endpoint off: %v, want ErrImageNotFound naming web:dev and --registry-port", err)
	}
}

// TestPullPolicyPlainImage: pull_policy applies to images pulled by name
// too: never fails on a missing one without asking the registry.
func TestPullPolicyPlainImage(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	_, err := d.Start(e.ctx, e.task("web", 1, func(s *types.Service) {
		s.Image, s.PullPolicy = "berth-test/missing:never", types.PullNever
	}))
	if !errors.Is(err, driver.ErrImageNotFound) || !strings.Contains(err.Error(), "berth-test/missing:never") || !strings.Contains(err.Error(), "pull_policy is never") {
		t.Errorf("never, missing: %v, want ErrImageNotFound naming the image and the policy", err)
	}
	// never, present: runs from the engine's copy.
	e.start(d, e.task("web", 2, func(s *types.Service) { s.PullPolicy = types.PullNever }))

	// always, on a build made on this engine (pinned by ID, in no
	// registry): it runs, as there is nothing to pull it from.
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	built, err := cli.ImageInspect(e.ctx, e.image)
	if err != nil {
		t.Fatal(err)
	}
	e.start(d, e.task("web", 3, func(s *types.Service) { s.ImageID, s.PullPolicy = built.ID, types.PullAlways }))
}
