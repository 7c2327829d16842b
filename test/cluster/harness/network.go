package harness

import (
	"fmt"
	"net"
	"strconv"
	"testing"
)

// Ports every manager and agent uses on its own address, as on separate
// hosts.
const (
	APIPort     = 7700
	RaftPort    = 7701
	ClusterPort = 7702
	AgentPort   = 7710
)

// Address layout within a cluster's network 127.0.N.0/24: managers on .1,
// .2, ..., agents from .11.
const (
	maxManagers     = 5
	firstAgentHost  = 11
	maxAgents       = 20
	firstNetOctet   = 1
	lastNetOctet    = 254
	defaultNetOctet = 1
)

// network is the 127.0.N.0/24 a cluster lives on.
type network struct{ octet int }

// host returns "127.0.N.i:port".
func (n network) host(i, port int) string {
	return net.JoinHostPort(fmt.Sprintf("127.0.%d.%d", n.octet, i), strconv.Itoa(port))
}

func (n network) managerAddrs(i int) (api, raft, cluster string) {
	return n.host(i, APIPort), n.host(i, RaftPort), n.host(i, ClusterPort)
}

func (n network) agentAddr(i int) string { return n.host(firstAgentHost+i-1, AgentPort) }

// pickNetwork finds a 127.0.N.0/24 whose ports are all free, starting with
// 127.0.1.0/24: another cluster test (another engineer's run) may hold it.
func pickNetwork(tb testing.TB) network {
	tb.Helper()
	for octet := defaultNetOctet; octet <= lastNetOctet; octet++ {
		n := network{octet: octet}
		if n.free() {
			return n
		}
	}
	tb.Fatalf("no network 127.0.N.0/24 (N %d..%d) has the cluster's ports free", firstNetOctet, lastNetOctet)
	return network{}
}

// free reports whether every address the cluster may listen on can be bound.
func (n network) free() bool {
	var addrs []string
	for i := 1; i <= maxManagers; i++ {
		a, r, c := n.managerAddrs(i)
		addrs = append(addrs, a, r, c)
	}
	for i := 1; i <= maxAgents; i++ {
		addrs = append(addrs, n.agentAddr(i))
	}
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
