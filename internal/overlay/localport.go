package overlay

import (
	"fmt"
	"net/netip"
)

// A published port in local mode (x-berth-mesh: local) must keep the
// client's address, as Kubernetes' externalTrafficPolicy: Local does. The
// mesh's proxy cannot (it connects from the node), so on a node with
// replicas of such a service the kernel takes the port instead: a new
// connection (or UDP flow) to one of the node's own addresses on that port
// is DNATed to one of the node's serving replicas, balanced as VIPs are,
// and let through FORWARD. The replica's replies go back through its
// bridge's gateway, where conntrack undoes the DNAT, so the replica sees
// the client as it is. A node with no local replica leaves the port to the
// proxy, which refuses it. Connections from the node itself go through
// nat OUTPUT, which these rules are not in: they reach the proxy.

// LocalPort is a published port served only by this node's replicas.
type LocalPort struct {
	Proto string // "tcp" or "udp"
	// Dst is the port's host address; invalid: every address of the node.
	Dst       netip.Addr
	Published uint16
	Target    uint16
	// Backends are this node's serving replicas of the service, on one of
	// its networks.
	Backends []netip.Addr
}

func (o *Overlay) checkLocalPorts(d Desired) error {
	if len(d.LocalPorts) > maxEntries {
		return fmt.Errorf("%d local ports: at most %d: %w", len(d.LocalPorts), maxEntries, ErrInvalid)
	}
	for i, p := range d.LocalPorts {
		field := fmt.Sprintf("local_ports[%d]", i)
		if (p.Proto != "tcp" && p.Proto != "udp") || p.Published == 0 || p.Target == 0 {
			return fmt.Errorf("%s %s/%d->%d must be a tcp or udp port from 1 to 65535: %w", field, p.Proto, p.Published, p.Target, ErrInvalid)
		}
		if p.Dst.IsValid() && !p.Dst.Is4() {
			return fmt.Errorf("%s.dst %q is not an IPv4 address: %w", field, p.Dst, ErrInvalid)
		}
		if len(p.Backends) > maxEntries {
			return fmt.Errorf("%s has %d backends: at most %d: %w", field, len(p.Backends), maxEntries, ErrInvalid)
		}
		for j, b := range p.Backends {
			if !b.Is4() {
				return fmt.Errorf("%s.backends[%d] %q is not an IPv4 address: %w", field, j, b, ErrInvalid)
			}
		}
	}
	return nil
}

// wantLocalPortRules adds the DNAT (nat, from PREROUTING) and the ACCEPT
// (filter, the overlay's FORWARD chain) of each local port with backends.
func (o *Overlay) wantLocalPortRules(d Desired, want map[string][]string) {
	for _, p := range d.LocalPorts {
		to := "-m addrtype --dst-type LOCAL"
		if p.Dst.IsValid() {
			to = fmt.Sprintf("-d %s/32", p.Dst)
		}
		match := fmt.Sprintf("%s -p %s -m %s --dport %d", to, p.Proto, p.Proto, p.Published)
		for i, b := range p.Backends {
			pick := pickOf(i, len(p.Backends))
			want[vipNat] = append(want[vipNat], fmt.Sprintf("-A %s %s %s%s -j DNAT --to-destination %s:%d",
				vipNat, match, comment, pick, b, p.Target))
			want[filterChain] = append(want[filterChain], fmt.Sprintf("-A %s -d %s/32 -p %s -m %s --dport %d -m conntrack --ctstate DNAT %s -j ACCEPT",
				filterChain, b, p.Proto, p.Proto, p.Target, comment))
		}
	}
}
