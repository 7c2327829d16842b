package cluster

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// The fault suite: each scenario injects a fault under a running app and a
// write workload, then checks the invariants of harness (acknowledged
// writes all present, managers up and converged, nothing restarted, no node
// down, no duplicate replicas) and logs its figures in one FIGURE line
// (docs/reliability.md lists them).

// leaderKills is how many times leader-kill kills the leader.
const leaderKills = 3

// TestFaults runs the scenarios that can share one cluster of three
// managers and three agents, in order: each leaves it whole.
func TestFaults(t *testing.T) {
	c := start(t, harness.Options{Agents: harness.Zones("a", "b", "c")})
	leader := c.Leader(t, 10*time.Second)
	c.MustRun(t, leader, "up", "-d", "-f", writeApp(t, c, "steady", service{name: "web", replicas: 3}))
	harness.WaitFor(t, time.Minute, "steady web running", c.ExpectRunning(leader, "steady", "web", 3))

	t.Run("leader-kill", func(t *testing.T) { testLeaderKill(t, c) })
	t.Run("agent-restart", func(t *testing.T) { testAgentRestart(t, c) })
}

// testLeaderKill kills -9 the leader leaderKills times under a stream of
// writes, restarting each killed manager at once. The first kill lands
// right after a deploy forwarded by a follower was acknowledged. Each time
// another manager leads within electionBound; at the end every
// acknowledged write and the deploy are on every manager, the managers
// converge, no node was marked down, and the steady tasks never restarted
// nor ran twice.
func testLeaderKill(t *testing.T, c *harness.Cluster) {
	before := tasksOf(t, c, c.Leader(t, 10*time.Second), "steady")
	watch := c.Watch(t)
	const writes = 150
	w := c.StartWorkload(t, harness.WorkloadOptions{Prefix: "lk", Writes: writes})
	var slowest time.Duration
	for k := 1; k <= leaderKills; k++ {
		w.WaitAcked(t, k*writes/(leaderKills+1), time.Minute)
		if k == 1 {
			// Once `up -d` returns, the deploy is acknowledged and must
			// survive the kill that follows at once.
			leader := c.Leader(t, 30*time.Second)
			rollout := writeApp(t, c, "rollout", service{name: "api", replicas: 4}, service{name: "worker", replicas: 2})
			c.MustRun(t, otherThan(c.Live(), leader), "up", "-d", "-f", rollout)
		}
		old, next, took := c.KillLeader(t, 2*electionBound)
		t.Logf("kill %d: leader %s killed; %s leads after %s", k, old.Name, next.Name, took.Round(time.Millisecond))
		if took > electionBound {
			t.Errorf("kill %d: a new leader took %s, want at most %s", k, took, electionBound)
		}
		slowest = max(slowest, took)
		c.Restart(t, old)
	}
	res := w.Wait(t)
	lost := c.CheckWrites(t, append(res.Acked, "rollout"), time.Minute)
	c.CheckManagers(t, time.Minute)
	leader := c.Leader(t, 10*time.Second)
	harness.WaitFor(t, time.Minute, "rollout converges", all(
		c.ExpectRunning(leader, "rollout", "api", 4),
		c.ExpectRunning(leader, "rollout", "worker", 2),
		c.ExpectRunning(leader, "steady", "web", 3),
	))
	restarted := assertSameTasks(t, before, tasksOf(t, c, leader, "steady"))
	obs := watch.Stop(t)
	obs.ExpectNoNodeDown(t)
	obs.ExpectNoDuplicatesBeyond(t, 0)
	t.Logf("workload: %d acknowledged, %d failed in %s, first errors %v", len(res.Acked), res.Failed, res.Elapsed.Round(time.Millisecond), res.Errors)
	harness.Figure(t, "leader-kill", "kills", leaderKills, "writes_acked", len(res.Acked), "writes_failed", res.Failed,
		"lost", lost, "new_leader_ms_max", slowest, "no_write_ms_max", res.LongestGap, "restarted", restarted, "dup_peak", obs.DupPeak, "nodes_down", len(obs.NodesDown))
}

// testAgentRestart kills -9 an agent that runs tasks (of every app the
// cluster has by then) and starts it again: its tasks keep running
// meanwhile, and the restarted agent re-attaches to them instead of
// restarting them. A probe app placed on its node proves
// the agent has reconciled with the managers since its restart.
func testAgentRestart(t *testing.T, c *harness.Cluster) {
	leader := c.Leader(t, 10*time.Second)
	victim, _ := agentWithTasks(t, c, leader, "steady")
	before := tasksOf(t, c, leader, "") // of every app
	on := runningOn(before, c.NodeByName(t, leader, victim.Name).ID)
	watch := c.Watch(t)
	victim.Kill(t)
	for _, tk := range on {
		if pid, err := harness.TaskPID(tk); err != nil || !harness.ProcessAlive(pid) {
			t.Errorf("task %s (%s) did not outlive its agent: %v", tk.Name(), tk.ContainerID, err)
		}
	}
	restartedAt := time.Now()
	victim.Start(t)
	probe := writeApp(t, c, "probe", service{name: "p", replicas: 1, deploy: `      placement:
        constraints: ["node.labels.zone==` + victim.Labels["zone"] + `"]
`})
	c.MustRun(t, leader, "up", "-d", "-f", probe)
	harness.WaitFor(t, time.Minute, "the probe runs on "+victim.Name, c.ExpectRunning(leader, "probe", "p", 1))
	reattached := time.Since(restartedAt)

	restarted := assertSameTasks(t, before, tasksOf(t, c, leader, ""))
	obs := watch.Stop(t)
	obs.ExpectNoNodeDown(t)
	obs.ExpectNoDuplicatesBeyond(t, 0)
	c.CheckManagers(t, time.Minute)
	harness.Figure(t, "agent-restart", "tasks_on_agent", len(on), "reattach_ms", reattached,
		"restarted", restarted, "dup_peak", obs.DupPeak, "nodes_down", len(obs.NodesDown))
}

// writeRefusalTimeout bounds how long a write may take to fail without
// quorum: it must fail with an error, not hang.
const writeRefusalTimeout = 60 * time.Second

// TestFaultQuorumLoss kills two of three managers once the writes
// acknowledged so far are on all three: writes are refused with a clear
// error, none is acknowledged, and the tasks keep running. Then the
// survivor's data becomes a one-manager cluster with --force-new-cluster:
// every acknowledged write and the app are there, nothing restarted, a new
// manager joins, and the recovered cluster takes writes again.
func TestFaultQuorumLoss(t *testing.T) {
	c := start(t, harness.Options{Agents: harness.Zones("a", "b")})
	// The survivor is the manager the agents joined through, the one
	// address they know.
	survivor := c.Managers[0]
	leader := c.Leader(t, 10*time.Second)
	c.MustRun(t, leader, "up", "-d", "-f", writeApp(t, c, "q", service{name: "web", replicas: 2}))
	harness.WaitFor(t, time.Minute, "web running", c.ExpectRunning(leader, "q", "web", 2))
	before := tasksOf(t, c, leader, "q")
	pre := c.StartWorkload(t, harness.WorkloadOptions{Prefix: "qa", Writes: 60}).Wait(t)
	acked := append(pre.Acked, "q")
	lost := c.CheckWrites(t, acked, time.Minute)

	watch := c.Watch(t)
	for _, m := range c.Managers[1:] {
		m.Kill(t)
	}
	refusedIn := refuseWritesWithoutQuorum(t, c, survivor)

	survivor.Stop(t, syscall.SIGTERM)
	survivor.SetArgs(append(survivor.Args(), "--force-new-cluster")...)
	recoverAt := time.Now()
	survivor.Start(t)
	harness.WaitFor(t, time.Minute, "the survivor leads a one-manager cluster", c.ExpectVoters(t, survivor, 1))
	recovered := time.Since(recoverAt)
	lost = max(lost, c.CheckWrites(t, acked, 10*time.Second))
	harness.WaitFor(t, time.Minute, "web running after recovery", all(
		c.ExpectRunning(survivor, "q", "web", 2),
		expectProcesses(c, 2),
	))
	restarted := assertSameTasks(t, before, tasksOf(t, c, survivor, "q"))

	joined := c.JoinManager(t, survivor, c.Token(t, survivor, "manager"))
	harness.WaitFor(t, time.Minute, joined.Name+" joins the recovered cluster", c.ExpectVoters(t, survivor, 2))
	post := c.StartWorkload(t, harness.WorkloadOptions{Prefix: "qc", Writes: 30, Managers: []*harness.Manager{survivor, joined}}).Wait(t)
	c.MustRun(t, joined, "-p", "q", "scale", "web=3")
	harness.WaitFor(t, time.Minute, "the recovered cluster takes writes", all(
		c.ExpectRunning(survivor, "q", "web", 3),
		expectProcesses(c, 3),
	))
	lost = max(lost, c.CheckWrites(t, append(acked, post.Acked...), time.Minute))
	c.CheckManagers(t, time.Minute)
	obs := watch.Stop(t)
	obs.ExpectNoDuplicatesBeyond(t, 0)
	harness.Figure(t, "quorum-loss", "writes_acked", len(pre.Acked)+len(post.Acked), "writes_failed", pre.Failed+post.Failed,
		"lost", lost, "refused_ms", refusedIn, "recovery_ms", recovered, "restarted", restarted,
		"dup_peak", obs.DupPeak, "nodes_down", len(obs.NodesDown))
}

// refuseWritesWithoutQuorum checks that survivor, alone of three, steps
// down and refuses writes with an error that names the cause while the
// tasks keep running, and returns how long a refusal took.
func refuseWritesWithoutQuorum(t *testing.T, c *harness.Cluster, survivor *harness.Manager) time.Duration {
	t.Helper()
	// Once the survivor has stepped down, a write is refused before it
	// reaches the log. (A write racing the step-down may be appended,
	// reported failed, and still be committed by --force-new-cluster,
	// which commits the whole log: its outcome is unknown, as for any
	// write whose leader is lost.)
	harness.WaitFor(t, 30*time.Second, survivor.Name+" steps down without quorum", func() error {
		if survivor.Leads() {
			return fmt.Errorf("%s still leads", survivor.Name)
		}
		return nil
	})
	during := c.StartWorkload(t, harness.WorkloadOptions{Prefix: "qb", Writes: 2, Managers: []*harness.Manager{survivor}}).Wait(t)
	if len(during.Acked) > 0 {
		t.Errorf("writes were acknowledged without quorum: %v", during.Acked)
	}
	began := time.Now()
	r, err := c.RunWithin(t, writeRefusalTimeout, survivor, "-p", "q", "scale", "web=3")
	if err != nil {
		t.Fatalf("a write without quorum did not fail in time: %v", err)
	}
	took := time.Since(began)
	if r.Code == 0 {
		t.Fatalf("a write without quorum succeeded: %s", r)
	}
	msg := strings.ToLower(r.Stderr)
	if !strings.Contains(msg, "quorum") && !strings.Contains(msg, "leader") {
		t.Errorf("the error of a write without quorum names neither quorum nor leader: %s", r)
	}
	t.Logf("write without quorum refused after %s: %s", took.Round(time.Millisecond), lastLine(r.Stderr))
	if err := expectProcesses(c, 2)(); err != nil {
		t.Errorf("tasks stopped when quorum was lost: %v", err)
	}
	return took
}

// tasksOf lists the tasks of app ("": of every app) on m, failing t if m
// does not answer.
func tasksOf(t *testing.T, c *harness.Cluster, m *harness.Manager, app string) []*types.Task {
	t.Helper()
	tasks, err := c.Tasks(m, app)
	if err != nil {
		t.Fatalf("tasks of %s on %s: %v", app, m.Name, err)
	}
	return tasks
}
