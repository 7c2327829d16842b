package docker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
)

// countingEngine is a proxy in front of the real engine that counts
// container inspections, the call a List must not repeat per container.
type countingEngine struct {
	inspects atomic.Int64 // container inspections
	lists    atomic.Int64 // container listings
	proxy    *httputil.ReverseProxy
}

var (
	inspectPath = regexp.MustCompile(`^(/v[0-9.]+)?/containers/[^/]+/json$`)
	listPath    = regexp.MustCompile(`^(/v[0-9.]+)?/containers/json$`)
)

func (c *countingEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method != http.MethodGet:
	case listPath.MatchString(r.URL.Path):
		c.lists.Add(1)
	case inspectPath.MatchString(r.URL.Path):
		c.inspects.Add(1)
	}
	c.proxy.ServeHTTP(w, r)
}

// startCountingEngine serves the proxy on a unix socket and returns its
// address for Config.Host.
func startCountingEngine(t *testing.T, cli *client.Client) (*countingEngine, string) {
	t.Helper()
	engine := cli.DaemonHost()
	if !strings.HasPrefix(engine, "unix://") {
		t.Skipf("the engine is at %s; this test proxies a unix socket", engine)
	}
	engineSock := strings.TrimPrefix(engine, "unix://")
	target, _ := url.Parse("http://engine")
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", engineSock)
	}}
	proxy.FlushInterval = -1 // the event stream
	c := &countingEngine{proxy: proxy}
	sock := filepath.Join(t.TempDir(), "engine.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: c}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return c, "unix://" + sock
}

// A List inspects only the containers whose state changed since they were
// last inspected: inspecting each one on every poll costs the engine
// O(containers) per poll.
func TestListInspectsOnlyChangedContainers(t *testing.T) {
	e := newEnv(t)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	counter, host := startCountingEngine(t, cli)
	d := e.driverAt("n1", host)
	var started []*driver.Status
	for slot := 1; slot <= 3; slot++ {
		started = append(started, e.start(d, e.task("web", slot, nil)))
	}

	list := func(wantInspects int64) map[string]*driver.Status {
		t.Helper()
		before := counter.inspects.Load()
		sts, err := d.List(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := counter.inspects.Load() - before; n != wantInspects {
			t.Fatalf("List of %d containers made %d inspections, want %d", len(sts), n, wantInspects)
		}
		out := map[string]*driver.Status{}
		for _, st := range sts {
			out[st.TaskID] = st
		}
		return out
	}
	got := list(0)
	for _, st := range started {
		if g := got[st.TaskID]; g == nil || g.State != driver.StateRunning || !g.StartedAt.Equal(st.StartedAt) {
			t.Fatalf("listed %s, want it as started: %s", describe(g), describe(st))
		}
	}

	// Killed behind the driver's back: the next List sees it changed.
	victim := started[0]
	if _, err := cli.ContainerKill(e.ctx, victim.ContainerID, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		t.Fatal(err)
	}
	res := cli.ContainerWait(e.ctx, victim.ContainerID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-res.Result:
	case err := <-res.Error:
		t.Fatal(err)
	}
	got = list(1)
	if g := got[victim.TaskID]; g == nil || g.State != driver.StateExited || g.ExitCode != 137 {
		t.Fatalf("killed task listed as %s, want exited with 137", describe(g))
	}
	if g := got[started[1].TaskID]; g == nil || g.State != driver.StateRunning {
		t.Fatalf("running task listed as %s", describe(g))
	}
	list(0)
}

// A created container is listed from the listing alone: the engine holds
// the lock an inspection waits for while the container's start is in
// flight, and a List that waited would stall the agent's loop.
func TestListDoesNotInspectCreatedContainers(t *testing.T) {
	e := newEnv(t)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	counter, host := startCountingEngine(t, cli)
	d := e.driverAt("n1", host)
	cfg := e.task("web", 1, nil)
	netIDs, err := d.ensurer.prepare(e.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, err := d.create(e.ctx, cfg, e.image, netIDs, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := counter.inspects.Load()
	sts, err := d.List(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := counter.inspects.Load() - before; n != 0 {
		t.Fatalf("List made %d inspections of a created container, want 0", n)
	}
	if len(sts) != 1 {
		t.Fatalf("listed %d tasks, want 1", len(sts))
	}
	if st := sts[0]; st.TaskID != cfg.Task.ID || st.State != driver.StateCreated || st.ContainerID != id {
		t.Fatalf("listed %s, want task %s created as container %s", describe(st), cfg.Task.ID, id)
	}
}

// The start event of a container Start started is not news (Start returns
// its status) and costs no inspection; a start by anyone else is news.
func TestOwnStartEventIsNoNews(t *testing.T) {
	e := newEnv(t)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	counter, host := startCountingEngine(t, cli)
	d := e.driverAt("n1", host)
	ch, err := d.Events(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := counter.inspects.Load()
	st := e.start(d, e.task("web", 1, nil))

	// The kill's die event comes after the start's in the stream.
	if _, err := cli.ContainerKill(e.ctx, st.ContainerID, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		t.Fatal(err)
	}
	next := func() *driver.Status {
		t.Helper()
		select {
		case got := <-ch:
			return got
		case <-e.ctx.Done():
			t.Fatal("no event before the deadline")
		}
		return nil
	}
	if got := next(); got.State != driver.StateExited || got.TaskID != st.TaskID {
		t.Fatalf("first event %s, want the kill's exit (the start was Start's own)", describe(got))
	}
	if n := counter.inspects.Load() - before; n != 2 {
		t.Fatalf("%d inspections for a start and an exit, want 2 (Start's and the exit's)", n)
	}
	if _, err := cli.ContainerStart(e.ctx, st.ContainerID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := next(); got.State != driver.StateRunning || got.TaskID != st.TaskID {
		t.Fatalf("event %s, want the task running again after a start outside the driver", describe(got))
	}
}

// Stop, Inspect and Remove of a task find its container without listing
// containers (a label-filtered listing costs the engine O(containers), so
// stopping every replica cost O(n^2)); a container removed behind the
// driver's back is not found, as before.
func TestStopFindsContainerWithoutListing(t *testing.T) {
	e := newEnv(t)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	counter, host := startCountingEngine(t, cli)
	d := e.driverAt("n1", host)
	a := e.start(d, e.task("web", 1, nil))
	b := e.start(d, e.task("web", 2, nil))

	before := counter.lists.Load()
	if err := d.Stop(e.ctx, a.TaskID, time.Second, ""); err != nil {
		t.Fatal(err)
	}
	st, err := d.Inspect(e.ctx, a.TaskID)
	if err != nil || st.State != driver.StateExited {
		t.Fatalf("inspect after stop: %s, %v; want exited", describe(st), err)
	}
	if err := d.Remove(e.ctx, a.TaskID); err != nil {
		t.Fatal(err)
	}
	if n := counter.lists.Load() - before; n != 0 {
		t.Fatalf("stop, inspect and remove listed containers %d times, want 0", n)
	}
	if _, err := d.Inspect(e.ctx, a.TaskID); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("inspect of a removed task: %v, want ErrNotFound", err)
	}

	if _, err := cli.ContainerRemove(e.ctx, b.ContainerID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(e.ctx, b.TaskID, time.Second, ""); err != nil {
		t.Fatalf("stop of a task removed outside the driver: %v", err)
	}
	if _, err := d.Inspect(e.ctx, b.TaskID); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("inspect of a task removed outside the driver: %v, want ErrNotFound", err)
	}
	if err := d.Remove(e.ctx, b.TaskID); err != nil {
		t.Fatalf("remove of a task removed outside the driver: %v", err)
	}
}
