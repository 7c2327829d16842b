package harness

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/types"
)

// Agent is one `berth agent` process.
type Agent struct {
	*Process
	Listen string
	Labels map[string]string
}

// Identity loads the certificate the agent was issued when it joined.
func (a *Agent) Identity() (*pki.Identity, error) {
	return pki.LoadIdentity(filepath.Join(a.DataDir, "pki"))
}

// JoinAgent starts an agent (exec driver only) that joins via's cluster
// port with token; it does not wait (see ExpectNodesReady).
func (c *Cluster) JoinAgent(tb testing.TB, via *Manager, token string, spec AgentSpec) *Agent {
	tb.Helper()
	i := len(c.Agents) + 1
	if i > maxAgents {
		tb.Fatalf("a test cluster has at most %d agents", maxAgents)
	}
	if spec.Name == "" {
		spec.Name = fmt.Sprintf("a%d", i)
	}
	a := &Agent{Process: c.newProcess(tb, spec.Name), Listen: c.net.agentAddr(i), Labels: spec.Labels}
	a.args = []string{"agent",
		"--join", via.ClusterAddr, "--token", token,
		"--name", a.Name, "--data-dir", a.DataDir, "--listen", a.Listen, "--driver", "exec",
		// The agents share one engine and network namespace: no overlay.
		"--overlay=false",
	}
	keys := make([]string, 0, len(spec.Labels))
	for k := range spec.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a.args = append(a.args, "--label", k+"="+spec.Labels[k])
	}
	c.Agents = append(c.Agents, a)
	a.Start(tb)
	return a
}

// TryJoinAgent runs an agent that is expected to be refused: it returns
// once the process exits, or an error if it still runs after timeout (it
// is then killed). The agent is not one of the cluster's Agents.
func (c *Cluster) TryJoinAgent(tb testing.TB, via *Manager, token, name string, timeout time.Duration) (Result, error) {
	tb.Helper()
	dir := filepath.Join(c.dir, name)
	return runCLIWithin(tb, timeout, c.bin, c.dir, dir, nil, "agent",
		"--join", via.ClusterAddr, "--token", token,
		"--name", name, "--data-dir", filepath.Join(dir, "data"),
		"--listen", c.net.agentAddr(maxAgents), "--driver", "exec", "--overlay=false",
	)
}

// Nodes lists the nodes through m's API.
func (c *Cluster) Nodes(m *Manager) ([]*types.Node, error) {
	ctx, cancel := callCtx()
	defer cancel()
	return m.Client().ListNodes(ctx)
}

// ExpectNodesReady is a WaitFor condition: m lists at least n nodes of the
// worker role, all ready, one per running agent name.
func (c *Cluster) ExpectNodesReady(m *Manager, n int) func() error {
	return func() error {
		nodes, err := c.Nodes(m)
		if err != nil {
			return err
		}
		ready := 0
		for _, node := range nodes {
			if node.Status == types.NodeReady {
				ready++
			}
		}
		if ready < n {
			return fmt.Errorf("%d of %d nodes ready: %s", ready, n, DescribeNodes(nodes))
		}
		return nil
	}
}

// NodeByName returns the ID of the node called name, as m knows it.
func (c *Cluster) NodeByName(tb testing.TB, m *Manager, name string) *types.Node {
	tb.Helper()
	nodes, err := c.Nodes(m)
	if err != nil {
		tb.Fatalf("list nodes on %s: %v", m.Name, err)
	}
	for _, n := range nodes {
		if n.Name == name {
			return n
		}
	}
	tb.Fatalf("no node %s on %s: %s", name, m.Name, DescribeNodes(nodes))
	return nil
}

// DescribeNodes renders nodes on one line, for failure messages.
func DescribeNodes(nodes []*types.Node) string {
	parts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		parts = append(parts, fmt.Sprintf("%s=%s/%s", n.Name, n.Status, n.Availability))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
