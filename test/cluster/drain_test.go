package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// TestDrain drains a node: its tasks move to the others, nothing new is
// placed there while it drains, and once active again it takes new tasks.
func TestDrain(t *testing.T) {
	c := start(t, harness.Options{Agents: harness.Zones("a", "b", "c")})
	leader := c.Leader(t, 10*time.Second)
	follower := otherThan(c.Live(), leader)

	file := writeApp(t, c, "drain", service{name: "web", replicas: 3})
	c.MustRun(t, leader, "up", "-d", "-f", file)
	harness.WaitFor(t, time.Minute, "web running", c.ExpectRunning(leader, "drain", "web", 3))
	victim, moved := agentWithTasks(t, c, leader, "drain")
	node := c.NodeByName(t, leader, victim.Name)

	// Through a follower: node operations are writes and are forwarded.
	c.MustRun(t, follower, "node", "drain", victim.Name)
	if n := c.NodeByName(t, leader, victim.Name); n.Availability != types.AvailabilityDrain {
		t.Fatalf("node %s is %s after drain, want drain", n.Name, n.Availability)
	}
	harness.WaitFor(t, time.Minute, "web moved off "+victim.Name, all(
		c.ExpectRunning(leader, "drain", "web", 3),
		noneOn(c, leader, "drain", node.ID),
	))
	harness.WaitFor(t, 30*time.Second, "the drained tasks' processes ended", func() error {
		for _, tk := range moved {
			if pid, err := harness.TaskPID(tk); err == nil && harness.ProcessAlive(pid) {
				return fmt.Errorf("task %s (pid %d) still runs on %s", tk.Name(), pid, victim.Name)
			}
		}
		return nil
	})

	c.MustRun(t, leader, "-p", "drain", "scale", "web=6")
	harness.WaitFor(t, time.Minute, "six web on the active nodes", all(
		c.ExpectRunning(leader, "drain", "web", 6),
		noneOn(c, leader, "drain", node.ID),
	))

	c.MustRun(t, leader, "node", "activate", victim.Name)
	c.MustRun(t, leader, "-p", "drain", "scale", "web=9")
	harness.WaitFor(t, time.Minute, "nine web, some on the reactivated node", all(
		c.ExpectRunning(leader, "drain", "web", 9),
		func() error {
			if noneOn(c, leader, "drain", node.ID)() == nil {
				return fmt.Errorf("nothing placed on %s after activate", victim.Name)
			}
			return nil
		},
	))
}
