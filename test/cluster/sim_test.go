package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// Shape of TestSimConverges: 50 simulated nodes in two `berth sim`
// processes (so one can be lost whole) and a 2,000-replica sim service
// whose memory reservation lets at most simPerNode tasks on a node: after
// the loss of simLost nodes, the others can still hold every replica, but
// with little room to spare.
const (
	simReplicas = 2000
	simKept     = 40
	simLost     = 10
	simNodeMem  = 1 << 30  // 1 GiB per node
	simTaskMem  = 20 << 20 // 20 MiB per task: 51 fit a node
	simPerNode  = simNodeMem / simTaskMem
)

// TestSimConverges runs a 2,000-task app on 50 simulated nodes (berth sim:
// real agents with the sim driver, each with its own certificate, heartbeats
// and blocking queries) against three real managers, and checks the
// placement exactly three times: once it converged, after 10 of its nodes
// were lost at once (kill -9 of their sim process) and after a kill -9 of
// the leader. Every time, each of the 2,000 slots runs exactly once, no
// other task of the service is live, every task is on a ready node and no
// node holds more than its memory allows.
func TestSimConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-manager cluster with 50 simulated nodes")
	}
	const ttl = 3 * time.Second
	began := time.Now()
	c := start(t, harness.Options{ServerArgs: []string{"--heartbeat-ttl", ttl.String()}})
	leader := c.Leader(t, 10*time.Second)
	token := c.Token(t, leader, "worker")
	simFlags := []string{"--memory", fmt.Sprint(simNodeMem), "--cpus", "16", "--start-delay", "10ms", "--parallel", "16", "--log-level", "error"}
	c.StartSim(t, leader, token, "kept", simKept, simFlags...)
	lost := c.StartSim(t, leader, token, "lost", simLost, simFlags...)
	harness.WaitFor(t, 90*time.Second, "50 simulated nodes ready", c.ExpectNodesReady(leader, simKept+simLost))
	t.Logf("cluster and 50 sim nodes ready in %s", time.Since(began).Round(100*time.Millisecond))

	file := writeSimApp(t, c, "simscale")
	mark := time.Now()
	c.MustRun(t, leader, "up", "-d", "-f", file)
	harness.WaitFor(t, 90*time.Second, "2,000 tasks placed exactly", expectSimExact(leader, "simscale", 0))
	t.Logf("2,000 tasks running %s after up", time.Since(mark).Round(100*time.Millisecond))

	mark = time.Now()
	lost.Kill(t)
	harness.WaitFor(t, 90*time.Second, "2,000 tasks exact on the 40 nodes left", expectSimExact(leader, "simscale", simKept))
	t.Logf("%d nodes lost: 2,000 tasks exact again %s after the kill (TTL %s)", simLost, time.Since(mark).Round(100*time.Millisecond), ttl)

	// The new leader knows no heartbeat at first: it must neither mark the
	// nodes down nor place anything twice, so the placement must stay
	// exact for two TTLs past the kill, not merely be exact once.
	mark = time.Now()
	_, next, took := c.KillLeader(t, 30*time.Second)
	harness.WaitFor(t, 90*time.Second, "2,000 tasks exact after the leader failover", expectSimExact(next, "simscale", simKept))
	t.Logf("leader killed: new leader in %s, 2,000 tasks exact %s after the kill", took.Round(100*time.Millisecond), time.Since(mark).Round(100*time.Millisecond))
	holdSimExact(t, next, "simscale", simKept, mark.Add(2*ttl))

	t.Run("exits and failures reach the managers", func(t *testing.T) {
		file := writeSimFile(t, c, "simlife", `  exits:
    x-berth-driver: sim
    deploy:
      replicas: 3
      labels:
        berth.sim.exit_after: 200ms
        berth.sim.exit_code: "3"
  broken:
    x-berth-driver: sim
    deploy:
      replicas: 1
      labels:
        berth.sim.fail: disk full
`)
		c.MustRun(t, next, "up", "-d", "-f", file)
		harness.WaitFor(t, time.Minute, "exits failed with code 3 and restarted, broken rejected", func() error {
			tasks, err := c.Tasks(next, "simlife")
			if err != nil {
				return err
			}
			exited, rejected := 0, 0
			for _, t := range tasks {
				if t.Service == "exits" && t.State == types.TaskFailed && t.ExitCode != nil && *t.ExitCode == 3 {
					exited++
				}
				if t.Service == "broken" && t.State == types.TaskRejected && strings.Contains(t.Error, "disk full") {
					rejected++
				}
			}
			// More failures than replicas: the restarted ones exited too.
			if exited <= 3 || rejected == 0 {
				return fmt.Errorf("%d exits failed with code 3 (want > 3), %d broken rejected with 'disk full': %s", exited, rejected, harness.Describe(tasks))
			}
			return nil
		})
	})
	t.Logf("whole test %s", time.Since(began).Round(100*time.Millisecond))
}

// holdSimExact fails t if app's placement on m is ever seen not exact
// before until (an API call that fails is only retried).
func holdSimExact(t *testing.T, m *harness.Manager, app string, nodes int, until time.Time) {
	t.Helper()
	for seen := 0; time.Now().Before(until) || seen == 0; {
		verdict, err := simPlacement(m, app, nodes)
		if err != nil {
			t.Logf("read the placement on %s: %v", m.Name, err)
		} else if verdict != nil {
			t.Fatalf("placement on %s stopped being exact: %v", m.Name, verdict)
		} else {
			seen++
		}
		time.Sleep(200 * time.Millisecond) // a polling interval, not a wait for a condition
	}
}

// writeSimApp writes a Compose file of one sim service of simReplicas
// replicas reserving simTaskMem each.
func writeSimApp(t *testing.T, c *harness.Cluster, project string) string {
	t.Helper()
	return writeSimFile(t, c, project, fmt.Sprintf(`  web:
    x-berth-driver: sim
    deploy:
      replicas: %d
      resources:
        reservations:
          memory: %dM
      labels:
        berth.sim.start_delay: 20ms
`, simReplicas, simTaskMem>>20))
}

// writeSimFile writes a Compose file of project with the given services
// (YAML indented by two spaces) and returns its path.
func writeSimFile(t *testing.T, c *harness.Cluster, project, services string) string {
	t.Helper()
	return writeFile(t, c, project, "name: "+project+"\nservices:\n"+services)
}

// expectSimExact is a WaitFor condition on m: every slot of app's web runs
// exactly once on a ready node, no other task of it is live, no node holds
// more reservations than its capacity, and (when nodes > 0) the tasks are
// on exactly that many ready nodes.
func expectSimExact(m *harness.Manager, app string, nodes int) func() error {
	return func() error {
		verdict, err := simPlacement(m, app, nodes)
		if err != nil {
			return err
		}
		return verdict
	}
}

// simPlacement reads app's tasks and the nodes on m and returns the
// verdict of checkSimPlacement, or err when they could not be read.
func simPlacement(m *harness.Manager, app string, nodes int) (verdict, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := m.Client()
	tasks, _, err := cl.ListTasks(ctx, api.TaskQuery{App: app})
	if err != nil {
		return nil, err
	}
	all, err := cl.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	ready := map[string]*types.Node{}
	for _, n := range all {
		if n.Status == types.NodeReady {
			ready[n.ID] = n
		}
	}
	return checkSimPlacement(tasks, ready, nodes), nil
}

// checkSimPlacement is expectSimExact's verdict on a listing.
func checkSimPlacement(tasks []*types.Task, ready map[string]*types.Node, nodes int) error {
	perSlot := map[int]int{}
	perNode := map[string]int64{}
	live, running := 0, 0
	for _, t := range tasks {
		if t.Service != "web" || t.State.Terminal() {
			continue
		}
		live++
		if t.State != types.TaskRunning || t.DesiredState != types.DesiredRunning {
			continue
		}
		running++
		perSlot[t.Slot]++
		if ready[t.NodeID] == nil {
			return fmt.Errorf("task %s (slot %d) runs on node %s, which is not ready", t.ID, t.Slot, t.NodeID)
		}
		perNode[t.NodeID] += simTaskMem
	}
	if running != simReplicas || live != simReplicas {
		return fmt.Errorf("%d running, %d live, want %d of each", running, live, simReplicas)
	}
	for slot := 1; slot <= simReplicas; slot++ {
		if perSlot[slot] != 1 {
			return fmt.Errorf("slot %d runs %d times, want once", slot, perSlot[slot])
		}
	}
	for id, used := range perNode {
		if capa := ready[id].Capacity.MemoryBytes; used > capa {
			return fmt.Errorf("node %s holds %d bytes of reservations, over its capacity %d (%d tasks, at most %d fit)",
				ready[id].Name, used, capa, used/simTaskMem, simPerNode)
		}
	}
	if nodes > 0 && len(perNode) != nodes {
		return fmt.Errorf("tasks on %d nodes, want %d", len(perNode), nodes)
	}
	return nil
}
