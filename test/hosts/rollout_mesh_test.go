package hosts

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// The rollout test's app: api, 4 replicas on a2 and a3 behind a published
// port, so every request from this process reaches a replica through some
// node's routing mesh (a1 runs none: its answers all cross hosts).
const (
	rolloutApp      = "ro"
	rolloutPort     = 18480
	rolloutReplicas = 4
)

// rolloutCompose is the app at one version: message is the replicas'
// MESSAGE (a change of it rolls api out), update the service's
// update_config and extra any more of its keys (x-berth-update).
func rolloutCompose(img, dir, message, update, extra string) string {
	return fmt.Sprintf(`services:
  api:
%s    ports: ["%d:8080"]
    deploy:
      replicas: %d
      placement: {constraints: [node.hostname!=a1]}
      update_config: {%s}
%s`, replica(img, dir, message), rolloutPort, rolloutReplicas, update, extra)
}

// TestRolloutThroughTheMesh is issue 18's proof through the routing mesh,
// with a bounded request loop on every node's published port: a stop-first
// and a start-first update of 4 replicas fail no request and keep the
// running count within replicas -/+ parallelism; a canary is promoted by
// itself once it stayed healthy for monitor, and another by berth deploy
// promote, with both versions answering while it waits.
func TestRolloutThroughTheMesh(t *testing.T) {
	needHosts(t)
	img := h.TestImage(t)
	n := newNetCluster(t, "br")
	const stopFirst = "parallelism: 1, order: stop-first, monitor: 2s"
	n.up(t, rolloutApp, rolloutCompose(img, n.dir, "v1", stopFirst, ""))
	h.WaitFor(t, 2*time.Minute, "api at 4 healthy replicas", n.serving(rolloutApp, "api", rolloutReplicas, rolloutApp+"_default", "a2", "a3"))
	var addrs []string
	for _, host := range []string{"a1", "a2", "a3"} {
		addrs = append(addrs, net.JoinHostPort(n.addrs[host], strconv.Itoa(rolloutPort)))
	}

	// rollTo runs up of the version and checks it through the mesh.
	rollTo := func(t *testing.T, message, update, extra string) (*meshLoop, *taskLog, h.Result) {
		t.Helper()
		loop := startMeshLoop(addrs)
		t.Cleanup(loop.stop)
		log := watchServiceTasks(n.ac, rolloutApp, "api")
		t.Cleanup(log.stop)
		h.WaitFor(t, 30*time.Second, "the loop answered by the old version", loop.answered(1))
		file := h.WriteFile(t, t.TempDir(), rolloutApp+".yaml", rolloutCompose(img, n.dir, message, update, extra))
		log.from = time.Now()
		r := n.c.run(t, "up", "-p", rolloutApp, "-f", file)
		log.to = time.Now()
		return loop, log, r
	}
	noneFailed := func(t *testing.T, loop *meshLoop, want ...string) {
		t.Helper()
		loop.stop()
		ok, failed, errs, msgs := loop.result()
		t.Logf("through the mesh: %d ok, %d failed, answers by version %v", ok, failed, msgs)
		if failed != 0 {
			t.Errorf("%d of %d requests failed: %v; want none", failed, ok+failed, errs)
		}
		for _, m := range want {
			if msgs[m] == 0 {
				t.Errorf("no answer from %s (answers %v)", m, msgs)
			}
		}
	}

	t.Run("stop-first: no request fails, replicas - parallelism to replicas running", func(t *testing.T) {
		loop, log, r := rollTo(t, "v2", stopFirst, "")
		if r.Code != 0 {
			t.Fatalf("up: %s", r)
		}
		noneFailed(t, loop, "v1", "v2")
		lo, hi := log.runningBounds(t)
		t.Logf("running during the rollout: %d to %d", lo, hi)
		if lo < rolloutReplicas-1 || hi > rolloutReplicas {
			t.Errorf("%d to %d replicas running, want %d to %d (stop-first: a new one starts once the old one ended)\n%s",
				lo, hi, rolloutReplicas-1, rolloutReplicas, log)
		}
	})

	t.Run("start-first: no request fails, never more than replicas + parallelism running", func(t *testing.T) {
		loop, log, r := rollTo(t, "v3", "parallelism: 1, order: start-first, monitor: 2s", "")
		if r.Code != 0 {
			t.Fatalf("up: %s", r)
		}
		noneFailed(t, loop, "v2", "v3")
		lo, hi := log.runningBounds(t)
		t.Logf("running during the rollout: %d to %d", lo, hi)
		if hi > rolloutReplicas+1 || lo < rolloutReplicas {
			t.Errorf("%d to %d replicas running, want %d to %d (start-first: the old one serves until the new one is up)\n%s",
				lo, hi, rolloutReplicas, rolloutReplicas+1, log)
		}
	})

	t.Run("a canary is promoted by itself once it stayed healthy for monitor", func(t *testing.T) {
		loop, log, r := rollTo(t, "v4", stopFirst, "    x-berth-update: {canary: 1, auto_promote: true}\n")
		if r.Code != 0 {
			t.Fatalf("up: %s", r)
		}
		noneFailed(t, loop, "v3", "v4")
		d := deploymentOf(t, n.ac, "api")
		if d.Canaries != 1 || !d.Promoted || d.State != api.DeploymentSucceeded {
			t.Errorf("deployment %+v; want 1 canary, promoted, succeeded", d)
		}
		// The canary ran for monitor (2 s) before the next replica of its
		// version started.
		starts := log.starts(d.ToVersion)
		if len(starts) != rolloutReplicas || starts[1].Sub(starts[0]) < 2*time.Second {
			t.Errorf("starts of version %d: %v; want %d, the second at least monitor (2s) after the canary\n%s", d.ToVersion, starts, rolloutReplicas, log)
		}
	})

	t.Run("a canary waits for berth deploy promote, both versions answering meanwhile", func(t *testing.T) {
		loop, log, r := rollTo(t, "v5", stopFirst, "    x-berth-update: {canary: 1, auto_promote: false}\n")
		if r.Code == 0 || !strings.Contains(r.Stderr, "awaiting_promotion") || !strings.Contains(r.Stderr, "berth deploy promote api") {
			t.Fatalf("up of a canary without auto_promote: exit %d, want non-zero saying it awaits berth deploy promote:\n%s", r.Code, r)
		}
		d := deploymentOf(t, n.ac, "api")
		if d.State != api.DeploymentPaused || d.Updated != 1 {
			t.Fatalf("deployment %+v; want paused with 1 replica updated", d)
		}
		h.WaitFor(t, 30*time.Second, "v5's canary and v4 both answering through the mesh", loop.answeredBy("v4", "v5"))
		r = n.c.run(t, "deploy", "promote", "-p", rolloutApp, "api")
		if r.Code != 0 {
			t.Fatalf("deploy promote: %s", r)
		}
		log.to = time.Now()
		noneFailed(t, loop, "v4", "v5")
		if d := deploymentOf(t, n.ac, "api"); d.State != api.DeploymentSucceeded || !d.Promoted {
			t.Errorf("deployment %+v after promote; want promoted and succeeded", d)
		}
		if got := len(n.tasks(t, rolloutApp, "api")); got != rolloutReplicas {
			t.Errorf("%d replicas running after promote, want %d", got, rolloutReplicas)
		}
	})

	t.Run("a version whose health check fails rolls back by itself, and up ends once the old one serves again", func(t *testing.T) {
		failing := "parallelism: 1, order: stop-first, monitor: 5s, failure_action: rollback"
		loop := startMeshLoop(addrs)
		t.Cleanup(loop.stop)
		h.WaitFor(t, 30*time.Second, "the loop answered by the old version", loop.answered(1))
		compose := strings.Replace(rolloutCompose(img, n.dir, "v6", failing, ""), "UNHEALTHY_FILE: /unhealthy", "UNHEALTHY_FILE: /", 1)
		file := h.WriteFile(t, t.TempDir(), rolloutApp+".yaml", compose)
		r := n.c.run(t, "up", "-p", rolloutApp, "-f", file)
		if r.Code == 0 || !strings.Contains(r.Stderr, "was rolled back") || !strings.Contains(r.Stderr, "succeeded and the previous spec serves again") {
			t.Fatalf("up of a version that never gets healthy: exit %d, want non-zero once the rollback succeeded:\n%s", r.Code, r)
		}
		// up waited for the rollback: the old spec serves in full already
		// (5 s only for this process's read of the tasks).
		h.WaitFor(t, 5*time.Second, "api at 4 healthy replicas as up returns", n.serving(rolloutApp, "api", rolloutReplicas, rolloutApp+"_default", "a2", "a3"))
		noneFailed(t, loop, "v5")
		if _, _, _, msgs := loop.result(); msgs["v6"] != 0 {
			t.Errorf("%d answers from v6, whose health check never passed", msgs["v6"])
		}
	})
}

// deploymentOf is the current deployment of the app's service.
func deploymentOf(t *testing.T, c *api.Client, svc string) *api.Deployment {
	t.Helper()
	ds, _, err := c.ListDeployments(context.Background(), api.DeploymentQuery{App: rolloutApp, Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) == 0 {
		t.Fatalf("no deployment of %s", svc)
	}
	return slices.MaxFunc(ds, func(a, b *api.Deployment) int { return int(a.ToVersion) - int(b.ToVersion) })
}

// meshLoop is a bounded request loop from this process over the published
// port of every node in turn, a new connection each time (so each request
// is balanced afresh), counting answers by the replica's MESSAGE.
type meshLoop struct {
	mu     sync.Mutex
	ok     int
	failed int
	errs   map[string]int
	msgs   map[string]int
	done   chan struct{}
	ended  chan struct{}
	once   sync.Once
}

// startMeshLoop starts the loop: at most 40,000 requests or 4 minutes,
// one every 5 ms.
func startMeshLoop(addrs []string) *meshLoop {
	l := &meshLoop{errs: map[string]int{}, msgs: map[string]int{}, done: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(l.ended)
		deadline := time.Now().Add(4 * time.Minute)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 40000 && time.Now().Before(deadline); i++ {
			select {
			case <-l.done:
				return
			case <-tick.C:
			}
			w, _, err := whoamiAt(addrs[i%len(addrs)])
			l.mu.Lock()
			if err != nil {
				l.failed++
				l.errs[errClass(addrs[i%len(addrs)], err)]++
			} else {
				l.ok++
				l.msgs[w.Message]++
			}
			l.mu.Unlock()
		}
	}()
	return l
}

// errClass is an error without its connection's ports, so a failure
// repeated over many connections counts as one kind: "10.213.0.5:18480:
// read: connection reset by peer".
func errClass(addr string, err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return addr + ": " + msg
}

func (l *meshLoop) stop() {
	l.once.Do(func() { close(l.done) })
	<-l.ended
}

func (l *meshLoop) result() (ok, failed int, errs, msgs map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, l.failed, maps.Clone(l.errs), maps.Clone(l.msgs)
}

// answered is met once n requests got an answer.
func (l *meshLoop) answered(n int) func() error {
	return func() error {
		if ok, _, _, _ := l.result(); ok < n {
			return fmt.Errorf("%d answers, want %d", ok, n)
		}
		return nil
	}
}

// answeredBy is met once the loop saw answers from each version named
// after the moment it is asked.
func (l *meshLoop) answeredBy(versions ...string) func() error {
	_, _, _, base := l.result()
	return func() error {
		_, _, _, now := l.result()
		for _, v := range versions {
			if now[v] <= base[v] {
				return fmt.Errorf("no new answer from %s yet (answers %v)", v, now)
			}
		}
		return nil
	}
}

// taskLog keeps every task of a service seen while it watches (the store
// may drop old ones), each at its latest.
type taskLog struct {
	mu       sync.Mutex
	tasks    map[string]*types.Task
	from, to time.Time
	done     chan struct{}
	ended    chan struct{}
	once     sync.Once
}

func watchServiceTasks(c *api.Client, app, svc string) *taskLog {
	l := &taskLog{tasks: map[string]*types.Task{}, done: make(chan struct{}), ended: make(chan struct{})}
	read := func(index uint64) uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		all, meta, err := c.ListTasks(ctx, api.TaskQuery{App: app, QueryOptions: api.QueryOptions{Index: index, Wait: 2 * time.Second}})
		if err != nil {
			return index
		}
		l.mu.Lock()
		for _, tk := range all {
			if tk.Service == svc {
				l.tasks[tk.ID] = tk
			}
		}
		l.mu.Unlock()
		return meta.Index
	}
	read(0)
	go func() {
		defer close(l.ended)
		var index uint64
		for {
			select {
			case <-l.done:
				read(0)
				return
			default:
			}
			index = read(index)
		}
	}()
	return l
}

func (l *taskLog) stop() {
	l.once.Do(func() { close(l.done) })
	<-l.ended
}

// runningBounds are the fewest and the most tasks running at once between
// from and to, from each task's start and end (the engine's times).
func (l *taskLog) runningBounds(t *testing.T) (lo, hi int) {
	t.Helper()
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, tk := range l.tasks {
		if tk.StartedAt.IsZero() {
			continue
		}
		edges = append(edges, edge{tk.StartedAt, +1})
		if !tk.FinishedAt.IsZero() {
			edges = append(edges, edge{tk.FinishedAt, -1})
		}
	}
	// At one instant, ends before starts: the lower bound is not lifted
	// by a start that the engine stamped in the same nanosecond.
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	running, lo, hi := 0, -1, 0
	for _, e := range edges {
		running += e.delta
		if e.at.Before(l.from) {
			continue
		}
		if e.at.After(l.to) {
			break
		}
		if lo < 0 || running < lo {
			lo = running
		}
		hi = max(hi, running)
	}
	if lo < 0 {
		t.Fatalf("no task started or ended during the rollout\n%s", l.string())
	}
	return lo, hi
}

// starts are the start times of the version's tasks, in order.
func (l *taskLog) starts(version uint64) []time.Time {
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Time
	for _, tk := range l.tasks {
		if tk.ServiceVersion == version && !tk.StartedAt.IsZero() {
			out = append(out, tk.StartedAt)
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

func (l *taskLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.string()
}

func (l *taskLog) string() string {
	var tasks []*types.Task
	for _, tk := range l.tasks {
		tasks = append(tasks, tk)
	}
	slices.SortFunc(tasks, func(a, b *types.Task) int { return a.StartedAt.Compare(b.StartedAt) })
	var b strings.Builder
	fmt.Fprintf(&b, "up from %s to %s\n", l.from.Format("15:04:05.000"), l.to.Format("15:04:05.000"))
	for _, tk := range tasks {
		fmt.Fprintf(&b, "  %s v%d %s started %s finished %s\n", tk.Name(), tk.ServiceVersion, tk.State,
			tk.StartedAt.Format("15:04:05.000"), tk.FinishedAt.Format("15:04:05.000"))
	}
	return b.String()
}
