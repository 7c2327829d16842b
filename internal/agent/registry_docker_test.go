package agent

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/testimage"
	"github.com/berth-dev/berth/internal/testregistry"
	"github.com/berth-dev/berth/internal/types"
)

// engine is the Docker engine at the default socket, or a skip.
func engine(t *testing.T) *client.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("pulls into the Docker engine")
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Skipf("no docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Skipf("no docker engine: %v", err)
	}
	return cli
}

// serveEndpoint runs the pull-through endpoint on a loopback port of its
// own, as the agent does, and returns its address.
func (f *registryFixture) serveEndpoint(managers ...string) string {
	ln, err := listenRegistry("127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	p := newRegistryProxy(pki.NewLive(f.fm.issue(f.t, pki.RoleWorker, "node-1")), func() []string { return managers }, slog.New(slog.DiscardHandler))
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	f.t.Cleanup(func() { srv.Close(); wg.Wait() })
	return ln.Addr().String()
}

// removeImage removes an image from the engine, whatever tags it has.
func removeImage(cli *client.Client, id string) {
	_, _ = cli.ImageRemove(context.Background(), id, client.ImageRemoveOptions{Force: true, PruneChildren: true})
}

// TestDockerPullsThroughEndpoint: the engine pulls an image by digest from
// the endpoint on loopback, over plain HTTP, while of the two managers one
// is down and the other lacks one of its layers, which a third has.
func TestDockerPullsThroughEndpoint(t *testing.T) {
	cli := engine(t)
	f := newRegistryFixture(t)
	img := newTestImage(t, 4096, 8192)
	partial, full := testregistry.New(), testregistry.New()
	for _, r := range []*testregistry.Registry{partial, full} {
		r.Admit = requireWorker
		r.Add("app/tiny", img)
	}
	partial.Lose(img.Layers[1])
	ep := f.serveEndpoint(downAddr(t), f.manager(partial), f.manager(full))
	t.Cleanup(func() { removeImage(cli, img.ConfigDigest) })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ref := ep + "/app/tiny@" + img.Digest
	resp, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err == nil {
		err = resp.Wait(ctx)
	}
	if err != nil {
		t.Fatalf("docker pull %s: %v", ref, err)
	}
	got, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatalf("inspect the pulled image: %v", err)
	}
	if got.ID != img.ConfigDigest {
		t.Errorf("pulled image ID %s, want %s", got.ID, img.ConfigDigest)
	}
	if n := countOf(full.Requests(), "GET /v2/app/tiny/blobs/"+img.Layers[1]); n == 0 {
		t.Errorf("the layer the first manager lacks was not fetched from the one that has it")
	}

	// An image no manager has: the pull fails, saying so.
	missing := newTestImage(t, 100)
	resp, err = cli.ImagePull(ctx, ep+"/app/tiny@"+missing.Digest, client.ImagePullOptions{})
	if err == nil {
		err = resp.Wait(ctx)
	}
	if err == nil {
		removeImage(cli, missing.ConfigDigest)
		t.Fatal("pulled an image no manager has")
	}
	if !strings.Contains(err.Error(), "not found") && !strings.Contains(err.Error(), "unknown") {
		t.Errorf("pull of an image no manager has: %v, want it not found", err)
	}
	t.Logf("the engine on a pull of an image nowhere: %v", err)
}

// TestClusterImageThroughAgent: the whole way on one node: a service pinned
// to a cluster image runs from an image the engine pulled through the
// agent's endpoint from the manager, the pull's progress reached the task
// state, and an image no manager has rejects the task naming it and the
// node.
func TestClusterImageThroughAgent(t *testing.T) {
	cli := engine(t)
	bin, err := testimage.AppBinary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	img, err := testregistry.NewImage([]string{testimage.ImageBinary},
		testregistry.File{Name: strings.TrimPrefix(testimage.ImageBinary, "/"), Data: data}, testregistry.RandomFile("nonce", 64))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeImage(cli, img.ConfigDigest) })
	m := newFakeManager(t)
	m.registry.Add("app/web", img)
	cfg := testConfig(t, m, newFakeDriver("unused"))
	cfg.Drivers, cfg.DriverOverrides = []string{types.DriverDocker}, nil
	cfg.RegistryAddr = "127.0.0.1:0"
	a, stop := runAgent(t, cfg)
	t.Cleanup(func() { removeTasks(a.NodeID(), t.TempDir()) })

	web := &types.Service{Name: "web", Image: "web:dev", ImageID: img.ConfigDigest, ClusterImage: "app/web@" + img.Digest,
		Version: 1, StopGracePeriod: time.Second}
	gone := &types.Service{Name: "gone", Image: "gone:dev", ClusterImage: "app/gone@sha256:" + strings.Repeat("0", 64), Version: 1}
	m.addService("app", web)
	m.addService("app", gone)
	webs := m.addTasks(a.NodeID(), "app", web, "web", 1)
	gones := m.addTasks(a.NodeID(), "app", gone, "gone", 1)

	waitFor(t, "the cluster image's task running", func() bool { return m.inState(types.TaskRunning, webs...) })
	waitFor(t, "the missing image's task rejected", func() bool { return m.inState(types.TaskRejected, gones...) })
	if got := m.task(gones[0]).Error; !strings.Contains(got, "gone:dev") || !strings.Contains(got, "node n1") {
		t.Errorf("rejection = %q, want it to name the image and the node", got)
	}
	t.Logf("rejection: %s", m.task(gones[0]).Error)
	var progress []string
	m.read(func() {
		for _, rep := range m.reports {
			for _, ts := range rep {
				if ts.TaskID == webs[0] && ts.Progress != "" {
					progress = append(progress, ts.Progress)
				}
			}
		}
	})
	if len(progress) == 0 || !strings.HasPrefix(progress[0], "pulling image web:dev") {
		t.Errorf("progress reported %q, want the pull of web:dev", progress)
	}
	if n := countOf(m.registry.Requests(), "GET /v2/app/web/manifests/"+img.Digest); n != 1 {
		t.Errorf("the manager served the manifest %d times, want once", n)
	}
	stop()
}
