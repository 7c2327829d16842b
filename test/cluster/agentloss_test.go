package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// TestAgentLoss freezes an agent (SIGSTOP) past the heartbeat TTL: its node
// is marked down and its tasks are replaced on the others. When it wakes
// (SIGCONT), its stale tasks stop within a TTL, and exactly the asked number
// of replicas runs, by the managers' account and by the processes on the
// hosts. A frozen agent cannot stop its tasks, so its slots run twice while
// it sleeps: the watch must see that, and no more than a TTL of them once
// it wakes.
func TestAgentLoss(t *testing.T) {
	const replicas = 3
	const ttl = 3 * time.Second
	opts := harness.Options{
		ServerArgs: []string{"--heartbeat-ttl", ttl.String()},
		Agents:     harness.Zones("a", "b", "c"),
	}
	c := start(t, opts)
	leader := c.Leader(t, 10*time.Second)

	file := writeApp(t, c, "loss", service{name: "web", replicas: replicas})
	c.MustRun(t, leader, "up", "-d", "-f", file)
	harness.WaitFor(t, time.Minute, "web running", c.ExpectRunning(leader, "loss", "web", replicas))

	victim, stale := agentWithTasks(t, c, leader, "loss")
	watch := c.Watch(t)
	victim.Pause(t)
	frozeAt := time.Now()
	node := c.NodeByName(t, leader, victim.Name)
	harness.WaitFor(t, ttl+30*time.Second, victim.Name+" marked down", func() error {
		n := c.NodeByName(t, leader, victim.Name)
		if n.Status != types.NodeDown {
			return fmt.Errorf("node %s is %s", n.Name, n.Status)
		}
		return nil
	})
	downAfter := time.Since(frozeAt)
	t.Logf("%s marked down %s after SIGSTOP (TTL %s)", victim.Name, downAfter.Round(100*time.Millisecond), ttl)
	harness.WaitFor(t, time.Minute, "web replaced on the other nodes", all(
		c.ExpectRunning(leader, "loss", "web", replicas),
		noneOn(c, leader, "loss", node.ID),
	))

	// The frozen agent cannot stop its tasks: their slots run twice until
	// it wakes, and the watch must see it (which shows it would see a
	// duplicate anywhere else).
	harness.WaitFor(t, 30*time.Second, "the watch sees a slot of "+victim.Name+" run twice", func() error {
		if obs := watch.Seen(); obs.DupPeak == 0 {
			return fmt.Errorf("no duplicate seen: %s", obs)
		}
		return nil
	})
	victim.Resume(t)
	resumedAt := time.Now()
	harness.WaitFor(t, time.Minute, victim.Name+" ready again", func() error {
		if n := c.NodeByName(t, leader, victim.Name); n.Status != types.NodeReady {
			return fmt.Errorf("node %s is %s", n.Name, n.Status)
		}
		return nil
	})
	harness.WaitFor(t, time.Minute, "the stale tasks stopped", func() error {
		for _, tk := range stale {
			if pid, err := harness.TaskPID(tk); err == nil && harness.ProcessAlive(pid) {
				return fmt.Errorf("stale task %s (pid %d) still runs on %s", tk.Name(), pid, victim.Name)
			}
		}
		return nil
	})
	stoppedIn := time.Since(resumedAt)
	harness.WaitFor(t, time.Minute, "exactly the replicas asked for", all(
		c.ExpectRunning(leader, "loss", "web", replicas),
		expectProcesses(c, replicas),
	))
	obs := watch.Stop(t)
	if _, seen := obs.NodesDown[victim.Name]; !seen || len(obs.NodesDown) != 1 {
		t.Errorf("the watch saw nodes down %v, want %s alone", obs.NodesDown, victim.Name)
	}
	if dupAfterWake := obs.DupLast.Sub(resumedAt); dupAfterWake > ttl {
		t.Errorf("slots still ran twice %s after %s woke, more than the TTL %s: %s", dupAfterWake, victim.Name, ttl, obs)
	}
	harness.Figure(t, "agent-pause", "ttl_ms", ttl, "down_ms", downAfter, "replaced", len(stale),
		"stale_stopped_ms", stoppedIn, "dup_peak", obs.DupPeak, "dup_longest_ms", obs.DupLongest)
}

// agentWithTasks returns an agent that runs tasks of app, and those tasks.
func agentWithTasks(t *testing.T, c *harness.Cluster, m *harness.Manager, app string) (*harness.Agent, []*types.Task) {
	t.Helper()
	tasks, err := c.Tasks(m, app)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range c.Agents {
		if on := runningOn(tasks, c.NodeByName(t, m, a.Name).ID); len(on) > 0 {
			return a, on
		}
	}
	t.Fatalf("no agent runs a task of %s: %s", app, harness.Describe(tasks))
	return nil, nil
}

// runningOn returns the tasks of tasks that run on nodeID.
func runningOn(tasks []*types.Task, nodeID string) []*types.Task {
	var on []*types.Task
	for _, tk := range tasks {
		if tk.NodeID == nodeID && tk.State == types.TaskRunning {
			on = append(on, tk)
		}
	}
	return on
}

// noneOn is a condition: no task of app meant to run is placed on nodeID.
func noneOn(c *harness.Cluster, m *harness.Manager, app, nodeID string) func() error {
	return func() error {
		tasks, err := c.Tasks(m, app)
		if err != nil {
			return err
		}
		for _, tk := range tasks {
			if tk.NodeID == nodeID && tk.DesiredState == types.DesiredRunning && !tk.State.Terminal() {
				return fmt.Errorf("task %s is still %s on node %s", tk.Name(), tk.State, nodeID)
			}
		}
		return nil
	}
}

// expectProcesses is a condition: exactly n task processes of the app
// binary live on the host.
func expectProcesses(c *harness.Cluster, n int) func() error {
	return func() error {
		if got := c.AppProcesses(); got != n {
			return fmt.Errorf("%d app processes run on the hosts, want %d", got, n)
		}
		return nil
	}
}
