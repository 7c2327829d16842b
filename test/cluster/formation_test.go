package cluster

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// TestFormation: three managers form one Raft group (the first bootstraps,
// the others join with the manager token), three agents join with the
// worker token, and every manager sees the same picture.
func TestFormation(t *testing.T) {
	c := start(t, harness.Options{Agents: harness.Zones("a", "b", "c")})
	leader := c.Leader(t, 10*time.Second)
	t.Logf("leader: %s", leader.Name)

	for _, m := range c.Managers {
		harness.WaitFor(t, 10*time.Second, m.Name+" lists 3 voters", c.ExpectVoters(t, m, 3))
		harness.WaitFor(t, 10*time.Second, m.Name+" lists 3 ready nodes", c.ExpectNodesReady(m, 3))
	}

	nodes, err := c.Nodes(leader)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range c.Agents {
		n := c.NodeByName(t, leader, a.Name)
		if n.Role != types.RoleWorker || n.Availability != types.AvailabilityActive {
			t.Errorf("node %s: role %q availability %q, want worker and active", a.Name, n.Role, n.Availability)
		}
		if n.Labels["zone"] != a.Labels["zone"] {
			t.Errorf("node %s: labels %v, want zone=%s", a.Name, n.Labels, a.Labels["zone"])
		}
	}
	if len(nodes) != len(c.Agents) {
		t.Errorf("want %d nodes (managers run no agent outside --dev), have %s", len(c.Agents), harness.DescribeNodes(nodes))
	}

	ls := c.MustRun(t, leader, "node", "ls")
	t.Logf("node ls:\n%s", ls.Stdout)
	members := c.MustRun(t, leader, "server", "members")
	t.Logf("server members:\n%s", members.Stdout)
}
