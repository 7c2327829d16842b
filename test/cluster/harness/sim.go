package harness

import (
	"fmt"
	"strconv"
	"testing"
)

// simHost is the host number, in the cluster's 127.0.N.0/24, where every
// simulated node's agent API listens (each on a port of its own): past the
// managers' and the agents' hosts.
const simHost = firstAgentHost + maxAgents + 1

// StartSim runs `berth sim` with n simulated nodes named prefix-0001 and
// up, joining via's cluster port with the worker token, plus extra flags
// (--memory, --start-delay, ...). It does not wait (see ExpectNodesReady).
// The process is one of the cluster's Agents, so it is killed at cleanup
// and its log shown when the test fails; Kill it to lose all its nodes at
// once.
func (c *Cluster) StartSim(tb testing.TB, via *Manager, token, prefix string, n int, extra ...string) *Agent {
	tb.Helper()
	ip := fmt.Sprintf("127.0.%d.%d", c.net.octet, simHost)
	a := &Agent{Process: c.newProcess(tb, prefix), Listen: ip}
	a.args = append([]string{"sim",
		"--nodes", strconv.Itoa(n), "--join", via.ClusterAddr, "--token", token,
		"--name-prefix", prefix, "--data-dir", a.DataDir, "--listen-host", ip,
	}, extra...)
	c.Agents = append(c.Agents, a)
	a.Start(tb)
	return a
}
