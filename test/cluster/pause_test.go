package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// pauseTTL is the heartbeat TTL of the pause scenarios: short, so that
// every pause below lasts several TTLs and a node nobody hears from for
// one TTL would be marked down.
const pauseTTL = 4 * time.Second

// pauseReplicas is the size of the app a pause must leave untouched.
const pauseReplicas = 6

// TestPauseLeader freezes the leader (SIGSTOP) for 10 s, 2.5 TTLs, then
// wakes it. The agents (which talk to it) must fail over to the managers
// that elect a new leader, in time for that leader's grace of one TTL, and
// the deposed leader must not act on its stale view when it wakes: no node
// is marked down and no task restarts.
func TestPauseLeader(t *testing.T) {
	c := start(t, pauseOptions())
	leader := c.Leader(t, 10*time.Second)
	survivePause(t, c, leader, 10*time.Second)
}

// TestPauseAgentsManager freezes, for 20 s (5 TTLs), the follower every
// agent talks to: the agents must fail over to another manager before the
// leader's TTL runs out. No node is marked down and no task restarts.
func TestPauseAgentsManager(t *testing.T) {
	c := harness.New(t, bins.berth, bins.app, pauseOptions())
	first := c.Bootstrap(t)
	managerToken := c.Token(t, first, "manager")
	via := c.JoinManager(t, first, managerToken)
	c.JoinManager(t, first, managerToken)
	harness.WaitFor(t, time.Minute, "every manager a voter under one leader", c.ExpectVoters(t, first, 3))
	if via.Leads() {
		t.Skipf("%s, meant as a follower, leads", via.Name)
	}
	workerToken := c.Token(t, first, "worker")
	for _, spec := range harness.Zones("a", "b", "c") {
		c.JoinAgent(t, via, workerToken, spec)
	}
	harness.WaitFor(t, time.Minute, "every agent a ready node", c.ExpectNodesReady(first, 3))
	survivePause(t, c, via, 20*time.Second)
}

func pauseOptions() harness.Options {
	return harness.Options{
		ServerArgs: []string{"--heartbeat-ttl", pauseTTL.String()},
		Agents:     harness.Zones("a", "b", "c"),
	}
}

// survivePause deploys an app, freezes victim for pause, wakes it and
// checks that no node was ever marked down (on any live manager, during
// and after the pause) and that every task that ran before still runs:
// same ID, attempt and process.
func survivePause(t *testing.T, c *harness.Cluster, victim *harness.Manager, pause time.Duration) {
	leader := c.Leader(t, 10*time.Second)
	file := writeApp(t, c, "steady", service{name: "web", replicas: pauseReplicas})
	c.MustRun(t, leader, "up", "-d", "-f", file)
	harness.WaitFor(t, time.Minute, "web running", c.ExpectRunning(leader, "steady", "web", pauseReplicas))
	before, err := c.Tasks(leader, "steady")
	if err != nil {
		t.Fatal(err)
	}
	procs := c.AppProcesses()

	w := watchPause(c)
	victim.Pause(t)
	w.start(time.Now())
	sleepUntil(time.Now().Add(pause), w.down)
	victim.Resume(t)
	resumed := time.Now()
	// The deposed leader acts, if it does, within moments of waking; three
	// TTLs are far more than it takes to learn its term is over.
	sleepUntil(resumed.Add(3*pauseTTL), w.down)
	w.stop()
	heard := "never"
	if d := w.failover(); d >= 0 {
		heard = "after " + d.Round(10*time.Millisecond).String()
	}
	t.Logf("%s paused %s (TTL %s): nodes marked down %d, every agent heard by a live leader again %s",
		victim.Name, pause, pauseTTL, len(w.downNodes()), heard)
	if down := w.downNodes(); len(down) > 0 {
		t.Errorf("nodes marked down by a manager pause: %v", down)
	}
	// Not even tried: a deposed leader waking up may still think it leads
	// for a moment, and must not act on the silence it caused itself.
	for _, m := range c.Managers {
		log, err := os.ReadFile(m.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(log, []byte("missed its heartbeats")) {
			t.Errorf("%s tried to mark a node down:\n%s", m.Name, grepLines(log, "missed its heartbeats"))
		}
		if bytes.Contains(log, []byte("did not run for a while")) {
			t.Logf("%s noticed its own stall and gave every node a full TTL", m.Name)
		}
	}

	agreed := c.Leader(t, 30*time.Second)
	harness.WaitFor(t, time.Minute, "web running", c.ExpectRunning(agreed, "steady", "web", pauseReplicas))
	after, err := c.Tasks(agreed, "steady")
	if err != nil {
		t.Fatal(err)
	}
	restarted := 0
	byID := map[string]*types.Task{}
	for _, a := range after {
		byID[a.ID] = a
	}
	for _, b := range before {
		if a := byID[b.ID]; b.State == types.TaskRunning && (a == nil || a.State != types.TaskRunning || a.Attempt != b.Attempt || a.ContainerID != b.ContainerID) {
			restarted++
		}
	}
	t.Logf("tasks restarted: %d of %d", restarted, pauseReplicas)
	assertSameTasks(t, before, after)
	if got := c.AppProcesses(); got != procs {
		t.Errorf("%d app processes run after the pause, %d before", got, procs)
	}
}

// sleepUntil waits until t, or until done is closed.
func sleepUntil(t time.Time, done <-chan struct{}) {
	select {
	case <-time.After(time.Until(t)):
	case <-done:
	}
}

// pauseWatch samples every live manager's nodes while a manager is paused:
// it notes any node not ready, and how long after the pause began the
// leader (a live one) had heard every node again.
type pauseWatch struct {
	c      *harness.Cluster
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// down is closed when a node is first seen down: the test has failed,
	// no need to wait out the pause.
	down chan struct{}

	mu       sync.Mutex
	pausedAt time.Time
	seen     map[string]string // node name -> status and where, when not ready
	heard    map[string]time.Time
}

func watchPause(c *harness.Cluster) *pauseWatch {
	return &pauseWatch{c: c, down: make(chan struct{}), seen: map[string]string{}, heard: map[string]time.Time{}}
}

func (w *pauseWatch) start(pausedAt time.Time) {
	w.pausedAt = pausedAt
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Go(func() {
		for ctx.Err() == nil {
			w.sample()
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
}

func (w *pauseWatch) stop() {
	w.cancel()
	w.wg.Wait()
}

// sample reads the nodes on every live manager; the leader's answer has
// the heartbeats.
func (w *pauseWatch) sample() {
	for _, m := range w.c.Live() {
		nodes, err := w.c.Nodes(m)
		if err != nil {
			continue
		}
		w.mu.Lock()
		for _, n := range nodes {
			if n.Status != types.NodeReady {
				if _, dup := w.seen[n.Name]; !dup {
					w.seen[n.Name] = fmt.Sprintf("%s on %s", n.Status, m.Name)
					if len(w.seen) == 1 {
						close(w.down)
					}
				}
			}
			if n.LastHeartbeat.After(w.pausedAt) {
				if _, ok := w.heard[n.Name]; !ok {
					w.heard[n.Name] = n.LastHeartbeat
				}
			}
		}
		w.mu.Unlock()
	}
}

func (w *pauseWatch) downNodes() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]string{}
	for k, v := range w.seen {
		out[k] = v
	}
	return out
}

// failover is how long after the pause the last node was first heard by a
// live leader (-1 if some node never was).
func (w *pauseWatch) failover() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var last time.Duration
	for _, a := range w.c.Agents {
		at, ok := w.heard[a.Name]
		if !ok {
			return -1
		}
		last = max(last, at.Sub(w.pausedAt))
	}
	return last
}

// grepLines returns the lines of log that contain s.
func grepLines(log []byte, s string) string {
	var out []string
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
