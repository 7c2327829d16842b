package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// TestNamedVolumeStaysWithItsReplica runs a service with a named volume on
// three agents. The exec driver keeps no volume data, so where a replica
// lands proves its pin: after `down` and `up` (with the scheduler drawn to
// other nodes), and after its agent dies and comes back, each replica is
// back on its own node; while its node is down or drained it waits, pending
// with the reason, never started elsewhere; `berth service unpin` moves it.
// Then a drain with nowhere to go keeps the old task running.
func TestNamedVolumeStaysWithItsReplica(t *testing.T) {
	const ttl = 3 * time.Second
	c := start(t, harness.Options{
		ServerArgs: []string{"--heartbeat-ttl", ttl.String()},
		Agents:     harness.Zones("a", "b", "c"),
	})
	leader := c.Leader(t, 10*time.Second)
	nameOf := map[string]string{}
	for _, a := range c.Agents {
		nameOf[c.NodeByName(t, leader, a.Name).ID] = a.Name
	}
	file := writeVolumeApp(t, c)
	c.MustRun(t, leader, "up", "-d", "-f", file)
	harness.WaitFor(t, time.Minute, "db running", c.ExpectRunning(leader, "vol", "db", 2))
	first := slotNodes(t, c, leader)
	t.Logf("db.1 on %s, db.2 on %s", nameOf[first[1]], nameOf[first[2]])
	ps := c.MustRun(t, leader, "-p", "vol", "ps").Stdout
	for _, want := range []string{"PINNED TO NODE", "db.1", "db.2", nameOf[first[1]], nameOf[first[2]]} {
		if !strings.Contains(ps, want) {
			t.Fatalf("berth ps does not show the pins (%q):\n%s", want, ps)
		}
	}

	t.Run("down and up", func(t *testing.T) {
		c.MustRun(t, leader, "-p", "vol", "down")
		// Busy tasks on the pinned nodes: left to itself the scheduler
		// would now put db on the idle node.
		c.MustRun(t, leader, "up", "-d", "-f", writeBusyApp(t, c, nameOf[first[1]], nameOf[first[2]]))
		harness.WaitFor(t, time.Minute, "busy running", all(
			c.ExpectRunning(leader, "busy", "b1", 1), c.ExpectRunning(leader, "busy", "b2", 1)))
		c.MustRun(t, leader, "up", "-d", "-f", file)
		harness.WaitFor(t, time.Minute, "db running again", c.ExpectRunning(leader, "vol", "db", 2))
		if got := slotNodes(t, c, leader); got[1] != first[1] || got[2] != first[2] {
			t.Fatalf("after down and up db.1 is on %s and db.2 on %s, want %s and %s",
				nameOf[got[1]], nameOf[got[2]], nameOf[first[1]], nameOf[first[2]])
		}
	})

	t.Run("agent restart", func(t *testing.T) {
		victim := agentNamed(t, c, nameOf[first[1]])
		victim.Kill(t)
		harness.WaitFor(t, ttl+time.Minute, "db.1 waiting for "+victim.Name, waitingFor(c, leader, 1, first[1], "which is down"))
		victim.Start(t)
		harness.WaitFor(t, time.Minute, "db.1 running on "+victim.Name+" again", all(
			c.ExpectRunning(leader, "vol", "db", 2), onNode(c, leader, 1, first[1])))
	})

	t.Run("drain a pinned node, then unpin", func(t *testing.T) {
		old := runningSlot(t, c, leader, 2)
		c.MustRun(t, leader, "node", "drain", nameOf[first[2]])
		harness.WaitFor(t, time.Minute, "db.2 replacement waiting", waitingFor(c, leader, 2, first[2], "which is drained"))
		assertStillRuns(t, c, leader, old)
		c.MustRun(t, leader, "-p", "vol", "service", "unpin", "db.2")
		harness.WaitFor(t, time.Minute, "db.2 moved off the drained node", all(
			c.ExpectRunning(leader, "vol", "db", 2), noneOn(c, leader, "vol", first[2])))
		if pid, err := harness.TaskPID(old); err == nil && harness.ProcessAlive(pid) {
			t.Errorf("the old db.2 (pid %d) still runs once replaced", pid)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pin, now := pinOf(t, ctx, leader, 2), slotNodes(t, c, leader)[2]
		if pin == nil || pin.NodeID != now {
			t.Fatalf("db.2 runs on %s but its pin is %+v", nameOf[now], pin)
		}
		c.MustRun(t, leader, "node", "activate", nameOf[first[2]])
	})

	t.Run("drain with nowhere to go", func(t *testing.T) {
		c.MustRun(t, leader, "-p", "busy", "down")
		c.MustRun(t, leader, "up", "-d", "-f", writeApp(t, c, "full", service{name: "web", replicas: 3, deploy: `      placement:
        max_replicas_per_node: 1
`}))
		harness.WaitFor(t, time.Minute, "web running", c.ExpectRunning(leader, "full", "web", 3))
		victim, on := agentWithTasks(t, c, leader, "full")
		c.MustRun(t, leader, "node", "drain", victim.Name)
		harness.WaitFor(t, time.Minute, "the replacement pending with its reason", func() error {
			tasks, err := c.Tasks(leader, "full")
			if err != nil {
				return err
			}
			for _, tk := range tasks {
				if tk.State == types.TaskPending && tk.DesiredState == types.DesiredRunning && strings.Contains(tk.PendingReason, "max replicas per node") {
					return nil
				}
			}
			return fmt.Errorf("no replacement pending for max replicas per node: %s", harness.Describe(tasks))
		})
		assertStillRuns(t, c, leader, on[0])
		ps := c.MustRun(t, leader, "-p", "full", "ps").Stdout
		if !strings.Contains(ps, "pending: 0/3 nodes available") {
			t.Errorf("berth ps does not show why the replacement waits:\n%s", ps)
		}
	})
}

// writeVolumeApp writes app "vol": two replicas of db mounting volume data.
func writeVolumeApp(t *testing.T, c *harness.Cluster) string {
	t.Helper()
	return writeFile(t, c, "vol", `name: vol
services:
  db:
    x-berth-driver: exec
    image: berth-test/unused-by-exec
    command: ["`+c.AppBin+`"]
    stop_grace_period: 2s
    environment:
      PORT: "0"
      MESSAGE: db
    volumes:
      - data:/data
    deploy:
      replicas: 2
volumes:
  data: {}
`)
}

// writeBusyApp writes app "busy": one task on each named node.
func writeBusyApp(t *testing.T, c *harness.Cluster, nodes ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("name: busy\nservices:\n")
	for i, n := range nodes {
		fmt.Fprintf(&b, `  b%d:
    x-berth-driver: exec
    image: berth-test/unused-by-exec
    command: ["%s"]
    stop_grace_period: 2s
    environment:
      PORT: "0"
    deploy:
      placement:
        constraints: ["node.hostname==%s"]
`, i+1, c.AppBin, n)
	}
	return writeFile(t, c, "busy", b.String())
}

func writeFile(t *testing.T, c *harness.Cluster, project, content string) string {
	t.Helper()
	dir := filepath.Join(c.Dir(), project)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// slotNodes maps each slot of vol/db to the node of its running task.
func slotNodes(t *testing.T, c *harness.Cluster, m *harness.Manager) map[int]string {
	t.Helper()
	tasks, err := c.Tasks(m, "vol")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, tk := range harness.Running(tasks, "db") {
		out[tk.Slot] = tk.NodeID
	}
	return out
}

func runningSlot(t *testing.T, c *harness.Cluster, m *harness.Manager, slot int) *types.Task {
	t.Helper()
	tasks, err := c.Tasks(m, "vol")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range harness.Running(tasks, "db") {
		if tk.Slot == slot {
			return tk
		}
	}
	t.Fatalf("db.%d is not running: %s", slot, harness.Describe(tasks))
	return nil
}

// waitingFor is a condition: db's slot has a pending task whose reason
// names the pinned node's state, and no task of the slot runs or is on its
// way on any other node (it must never start elsewhere, empty).
func waitingFor(c *harness.Cluster, m *harness.Manager, slot int, nodeID, state string) func() error {
	return func() error {
		tasks, err := c.Tasks(m, "vol")
		if err != nil {
			return err
		}
		waiting := false
		for _, tk := range tasks {
			if tk.Service != "db" || tk.Slot != slot || tk.DesiredState != types.DesiredRunning {
				continue
			}
			switch {
			case tk.State == types.TaskPending:
				waiting = strings.Contains(tk.PendingReason, state) && strings.Contains(tk.PendingReason, "berth service unpin db.")
			case tk.NodeID != nodeID && !tk.State.Terminal():
				return fmt.Errorf("db.%d started on another node than its volume's: %s", slot, harness.Describe(tasks))
			}
		}
		if !waiting {
			return fmt.Errorf("db.%d is not waiting %q: %s", slot, state, harness.Describe(tasks))
		}
		return nil
	}
}

// onNode is a condition: db's slot runs on nodeID.
func onNode(c *harness.Cluster, m *harness.Manager, slot int, nodeID string) func() error {
	return func() error {
		tasks, err := c.Tasks(m, "vol")
		if err != nil {
			return err
		}
		for _, tk := range harness.Running(tasks, "db") {
			if tk.Slot == slot && tk.NodeID == nodeID {
				return nil
			}
		}
		return fmt.Errorf("db.%d does not run on its node: %s", slot, harness.Describe(tasks))
	}
}

// assertStillRuns checks that a task being replaced is still wanted,
// running, and its process alive.
func assertStillRuns(t *testing.T, c *harness.Cluster, m *harness.Manager, old *types.Task) {
	t.Helper()
	tasks, err := c.Tasks(m, old.App)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		if tk.ID != old.ID {
			continue
		}
		if tk.State != types.TaskRunning || tk.DesiredState != types.DesiredRunning {
			t.Fatalf("%s is %s/%s while its replacement cannot be placed, want running", tk.Name(), tk.State, tk.DesiredState)
		}
		if pid, err := harness.TaskPID(old); err != nil || !harness.ProcessAlive(pid) {
			t.Fatalf("the process of %s is gone (%v)", tk.Name(), err)
		}
		return
	}
	t.Fatalf("task %s is gone: %s", old.ID, harness.Describe(tasks))
}

func agentNamed(t *testing.T, c *harness.Cluster, name string) *harness.Agent {
	t.Helper()
	for _, a := range c.Agents {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no agent %s", name)
	return nil
}

func pinOf(t *testing.T, ctx context.Context, m *harness.Manager, slot int) *types.VolumePin {
	t.Helper()
	pins, err := m.Client().VolumePins(ctx, "vol")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pins {
		if p.Service == "db" && p.Slot == slot {
			return p
		}
	}
	return nil
}
