package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// simWideNodes is past the 63 nodes the first version's /18 networks of
// /24 slices held, and past the 127 wide slices of a default network: the
// last three nodes get small ones.
const simWideNodes = 130

// TestSimNetworkSpansManyNodes runs one replica on each of 130 simulated
// nodes, all on the app's default network, and checks that every replica
// runs and that the network gave each node its own slice: it grew in
// place past its first /20, and no two slices share an address.
func TestSimNetworkSpansManyNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-manager cluster with 130 simulated nodes")
	}
	began := time.Now()
	c := start(t, harness.Options{})
	leader := c.Leader(t, 10*time.Second)
	token := c.Token(t, leader, "worker")
	c.StartSim(t, leader, token, "wide", simWideNodes, "--memory", fmt.Sprint(1<<30), "--cpus", "4", "--start-delay", "1ms", "--parallel", "16", "--log-level", "error")
	harness.WaitFor(t, 90*time.Second, "130 simulated nodes ready", c.ExpectNodesReady(leader, simWideNodes))
	file := writeSimFile(t, c, "simwide", fmt.Sprintf(`  web:
    x-berth-driver: sim
    deploy:
      replicas: %d
      placement:
        max_replicas_per_node: 1
`, simWideNodes))
	c.MustRun(t, leader, "up", "-d", "-f", file)
	harness.WaitFor(t, 90*time.Second, "a replica running on each of 130 nodes", func() error {
		return wideRunning(leader, "simwide")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := leader.Client().Network(ctx, "simwide_default")
	if err != nil {
		t.Fatal(err)
	}
	if err := distinctSlices(n); err != nil {
		t.Fatal(err)
	}
	t.Logf("130 nodes on %s in %s", n.Subnet, time.Since(began).Round(100*time.Millisecond))
}

// wideRunning says whether every replica of app's web runs, each on its
// own node.
func wideRunning(m *harness.Manager, app string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tasks, _, err := m.Client().ListTasks(ctx, api.TaskQuery{App: app})
	if err != nil {
		return err
	}
	nodes := map[string]bool{}
	var pending string
	for _, t := range tasks {
		if t.State == types.TaskRunning {
			nodes[t.NodeID] = true
		} else if t.State == types.TaskPending && pending == "" {
			pending = t.PendingReason
		}
	}
	if len(nodes) != simWideNodes {
		return fmt.Errorf("replicas run on %d nodes, want %d (a pending one says %q)", len(nodes), simWideNodes, pending)
	}
	return nil
}

// distinctSlices checks that the network has a slice on every node, each
// inside its subnet, none sharing an address with another.
func distinctSlices(n *api.Network) error {
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return err
	}
	if subnet.Bits() >= 20 {
		return fmt.Errorf("subnet %s did not grow past its first /20", subnet)
	}
	if len(n.Slices) != simWideNodes {
		return fmt.Errorf("%d slices, want %d", len(n.Slices), simWideNodes)
	}
	seen := map[netip.Prefix]string{}
	for node, s := range n.Slices {
		p, err := netip.ParsePrefix(s)
		if err != nil || !subnet.Contains(p.Addr()) {
			return fmt.Errorf("slice %q of %s is not in %s", s, node, subnet)
		}
		for q, other := range seen {
			if q.Overlaps(p) {
				return fmt.Errorf("slices %s of %s and %s of %s overlap", p, node, q, other)
			}
		}
		seen[p] = node
	}
	return nil
}
