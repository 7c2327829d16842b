package scheduler

import (
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/types"
)

// portKey names a published host port.
type portKey struct {
	proto string
	port  uint16
}

func (k portKey) String() string { return strconv.Itoa(int(k.port)) + "/" + k.proto }

// hostPort is one published port in the form the filters compare.
type hostPort struct {
	key    portKey
	hostIP string // "" means every address
	// ingress ports are the routing mesh's on a node whose agent serves
	// it (types.Node.Overlay): the task binds nothing there. Elsewhere the
	// engine publishes them, as host ports.
	ingress bool
}

// binds reports whether p takes its port on node n's host.
func (p hostPort) binds(n *types.Node) bool { return !p.ingress || !n.Overlay }

// publishedPorts keeps only the ports a task binds on its node's host.
func publishedPorts(ports []types.Port) []hostPort {
	var out []hostPort
	for _, p := range ports {
		if p.Published == 0 {
			continue
		}
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, hostPort{key: portKey{proto, p.Published}, hostIP: wildcardIP(p.HostIP), ingress: p.Mode == types.PortIngress})
	}
	return out
}

// wildcardIP folds the spellings of "every address" into "".
func wildcardIP(ip string) string {
	switch ip {
	case "0.0.0.0", "::", "[::]":
		return ""
	}
	return ip
}

// portSet records the host addresses already bound per published port.
type portSet map[portKey][]string

// conflicts reports whether p clashes with a port already bound: the same
// port and protocol clash unless both sides name different specific
// addresses.
func (s portSet) conflicts(p hostPort) bool {
	for _, ip := range s[p.key] {
		if ip == "" || p.hostIP == "" || ip == p.hostIP {
			return true
		}
	}
	return false
}

func (s portSet) add(p hostPort) { s[p.key] = append(s[p.key], p.hostIP) }

// remove forgets one binding of p, as add recorded it.
func (s portSet) remove(p hostPort) {
	ips := s[p.key]
	if i := slices.Index(ips, p.hostIP); i >= 0 {
		ips = slices.Delete(ips, i, i+1)
	}
	if len(ips) == 0 {
		delete(s, p.key)
	} else {
		s[p.key] = ips
	}
}
