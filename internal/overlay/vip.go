package overlay

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/ipam"
	"github.com/vishvananda/netlink"
)

// A service's VIP is balanced by the kernel, as kube-proxy's iptables mode
// does it (this kernel has no IPVS): in the nat table, a new connection to
// VIP:port is DNATed to one serving replica, chosen by a chain of
// `statistic --mode random` rules whose probabilities make the choice
// uniform (1/n, then 1/(n-1) of the rest, ..., then the last for sure).
// Conntrack keeps a connection on its replica; the rules are rewritten
// whole on every Apply, so a replica no longer serving gets no new
// connection while its open ones go on. What is not DNATed to a VIP (no
// serving replica, or a port the service does not list) is rejected in
// the filter table, so a client is refused at once instead of waiting for
// a timeout.
const (
	// vipNat is jumped to from PREROUTING (containers), vipNatOut from
	// nat OUTPUT (the node's own processes), vipFilter from the overlay's
	// FORWARD chain and from filter OUTPUT.
	vipNat    = "BERTH-VIP"
	vipNatOut = "BERTH-VIP-OUT"
	vipFilter = "BERTH-VIP-REJECT"
)

// VIP is a service's virtual address on one network and the replicas it
// balances over.
type VIP struct {
	Addr netip.Addr
	// Subnet is the network's: only its containers (and the node's own
	// processes) reach the VIP, so networks stay isolated.
	Subnet netip.Prefix
	// Ports are the ports the service lists, each DNATed to the same port
	// of a replica. None: the whole address is, every protocol and port.
	Ports []VIPPort
	// Backends are the serving replicas' addresses on the network; none
	// means the VIP refuses.
	Backends []netip.Addr
}

// VIPPort is a protocol ("tcp" or "udp") and port.
type VIPPort struct {
	Proto string
	Port  uint16
}

func (o *Overlay) checkVIPs(d Desired) error {
	if len(d.VIPs) > maxEntries {
		return fmt.Errorf("%d VIPs: at most %d: %w", len(d.VIPs), maxEntries, ErrInvalid)
	}
	seen := map[netip.Addr]bool{}
	for i, v := range d.VIPs {
		field := fmt.Sprintf("vips[%d]", i)
		if !v.Addr.Is4() || seen[v.Addr] {
			return fmt.Errorf("%s.addr %q must be an IPv4 address given once: %w", field, v.Addr, ErrInvalid)
		}
		seen[v.Addr] = true
		if !v4(v.Subnet) || !v.Subnet.Contains(v.Addr) {
			return fmt.Errorf("%s.subnet %q must be the IPv4 network holding %s: %w", field, v.Subnet, v.Addr, ErrInvalid)
		}
		if len(v.Ports) > maxEntries || len(v.Backends) > maxEntries {
			return fmt.Errorf("%s has %d ports and %d backends: at most %d of each: %w", field, len(v.Ports), len(v.Backends), maxEntries, ErrInvalid)
		}
		for j, p := range v.Ports {
			if (p.Proto != "tcp" && p.Proto != "udp") || p.Port == 0 {
				return fmt.Errorf("%s.ports[%d] %s/%d must be a tcp or udp port from 1 to 65535: %w", field, j, p.Proto, p.Port, ErrInvalid)
			}
		}
		for j, b := range v.Backends {
			if !b.Is4() || !v.Subnet.Contains(b) {
				return fmt.Errorf("%s.backends[%d] %q is not an address of %s: %w", field, j, b, v.Subnet, ErrInvalid)
			}
		}
	}
	return nil
}

// wantVIPRules adds the VIP chains' rules to want.
func (o *Overlay) wantVIPRules(d Desired, want map[string][]string) {
	want[vipNat] = []string{"-N " + vipNat}
	want[vipNatOut] = []string{"-N " + vipNatOut}
	want[vipFilter] = []string{"-N " + vipFilter}
	for _, v := range d.VIPs {
		dst := fmt.Sprintf("-d %s/32", v.Addr)
		for _, sel := range vipSelectors(v) {
			for i, b := range v.Backends {
				to := b.String()
				if sel.port != 0 {
					to = fmt.Sprintf("%s:%d", b, sel.port)
				}
				pick := pickOf(i, len(v.Backends))
				rule := fmt.Sprintf("%s%s %s%s -j DNAT --to-destination %s", dst, sel.match, comment, pick, to)
				want[vipNat] = append(want[vipNat], fmt.Sprintf("-A %s -s %s %s", vipNat, v.Subnet, rule))
				want[vipNatOut] = append(want[vipNatOut], fmt.Sprintf("-A %s %s", vipNatOut, rule))
			}
		}
		want[vipFilter] = append(want[vipFilter], fmt.Sprintf("-A %s %s %s -j REJECT --reject-with icmp-port-unreachable", vipFilter, dst, comment))
	}
}

type vipSelector struct {
	match string // "" (the whole address) or " -p tcp -m tcp --dport 80"
	port  uint16
}

func vipSelectors(v VIP) []vipSelector {
	if len(v.Ports) == 0 {
		return []vipSelector{{}}
	}
	var sels []vipSelector
	for _, p := range v.Ports {
		sels = append(sels, vipSelector{match: fmt.Sprintf(" -p %s -m %s --dport %d", p.Proto, p.Proto, p.Port), port: p.Port})
	}
	return sels
}

// pickOf is the match that takes backend i of n: uniform over the n,
// each rule taking 1/(n-i) of what the ones before it left, the last all.
func pickOf(i, n int) string {
	if left := n - i; left > 1 {
		return " -m statistic --mode random --probability " + probability(1/float64(left))
	}
	return ""
}

// probability is p as iptables prints it back: the kernel keeps it as a
// fraction of 2^31, and `iptables -S` shows that with 11 decimals. Written
// so, a chain read back equals the one wanted and is not rewritten.
func probability(p float64) string {
	const scale = 1 << 31
	return fmt.Sprintf("%.11f", math.Round(p*scale)/scale)
}

// hairpinRules are the nat POSTROUTING rules that make VIPs work from the
// node's own slices and processes, before the overlay's ACCEPT of traffic
// inside a subnet:
//   - a replica whose connection to its own VIP was DNATed to itself would
//     get its own packets from its own address: such a connection is
//     masqueraded to the bridge's gateway, so the replies come back
//     through the node and are un-NATed. Only this case loses the client's
//     address.
//   - a client DNATed to another replica on its own bridge gets the
//     replies straight over the bridge; br_netfilter (on where Docker
//     runs) un-NATs them there. Where it is off (bridged), the whole
//     slice's DNATed connections are masqueraded instead.
//   - the node's own processes (a VIP's DNAT, the mesh's proxy) reach a
//     container on another node from the node's VTEP address on that
//     network, which the peer accepts and routes back: the source the
//     kernel picks (the underlay's address, or the device's first VTEP,
//     of another network) would be dropped there.
func (o *Overlay) hairpinRules(d Desired, bridged bool) []string {
	var rules []string
	masq := func(src, dst string) {
		rules = append(rules, fmt.Sprintf("-A %s -s %s -d %s %s -m conntrack --ctstate DNAT -j MASQUERADE", natChain, src, dst, comment))
	}
	for _, n := range d.Networks {
		if !n.Slice.IsValid() {
			continue
		}
		if hasPeerSlices(d) {
			rules = append(rules, fmt.Sprintf("-A %s ! -s %s -d %s -o %s %s -j SNAT --to-source %s",
				natChain, n.Subnet, n.Subnet, o.cfg.Device, comment, n.Slice.Addr()))
		}
		if !hasVIPIn(d, n.Subnet) {
			continue
		}
		if bridged {
			masq(n.Slice.String(), n.Slice.String())
		} else {
			for _, b := range localBackends(d, n.Slice) {
				masq(b.String()+"/32", b.String()+"/32")
			}
		}
	}
	return rules
}

// localBackends are the VIPs' backends in slice, sorted, each once.
func localBackends(d Desired, slice netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for _, v := range d.VIPs {
		for _, b := range v.Backends {
			if slice.Contains(b) && !slices.Contains(out, b) {
				out = append(out, b)
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func hasVIPIn(d Desired, subnet netip.Prefix) bool {
	return slices.ContainsFunc(d.VIPs, func(v VIP) bool { return v.Subnet == subnet })
}

func hasPeerSlices(d Desired) bool {
	return slices.ContainsFunc(d.Peers, func(p Peer) bool { return len(p.Slices) > 0 })
}

// udpVIPs maps each VIP that carries UDP to its backends, as a key: a
// change of it is when UDP conntrack entries must go (see flushUDP).
func udpVIPs(d Desired) map[netip.Addr]string {
	m := map[netip.Addr]string{}
	for _, v := range d.VIPs {
		udp := len(v.Ports) == 0 || slices.ContainsFunc(v.Ports, func(p VIPPort) bool { return p.Proto == "udp" })
		if !udp {
			continue
		}
		var b []string
		for _, a := range v.Backends {
			b = append(b, a.String())
		}
		m[v.Addr] = strings.Join(b, ",")
	}
	return m
}

// convergeHairpin turns on hairpin mode on the ports of every local bridge
// of a network with VIPs. A replica that connects to its own service's VIP
// may be DNATed to itself; with br_netfilter the bridge then has to send
// the frame back out of the port it came in by, which it does only in
// hairpin mode (Docker sets it only without its userland proxy). A port
// added later (a new replica) gets it on the next Apply, which its
// becoming a serving endpoint brings.
func (o *Overlay) convergeHairpin(h *netlink.Handle, d Desired) error {
	gateways := map[netip.Addr]bool{}
	for _, n := range d.Networks {
		if n.Slice.IsValid() && hasVIPIn(d, n.Subnet) {
			gateways[ipam.Gateway(n.Slice)] = true
		}
	}
	if len(gateways) == 0 {
		return nil
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	bridges := map[int]bool{}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && gateways[ip] {
			bridges[a.LinkIndex] = true
		}
	}
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	// A port seen in hairpin mode is remembered (by index and name) and
	// not asked again: with a hundred replicas, asking every port on
	// every Apply was a fifth of the agent's CPU through a deploy.
	seen := make(map[int]string, len(o.hairpin))
	for _, l := range links {
		a := l.Attrs()
		if !bridges[a.MasterIndex] {
			continue
		}
		if o.hairpin[a.Index] == a.Name {
			seen[a.Index] = a.Name
			continue
		}
		if p, err := h.LinkGetProtinfo(l); err != nil || !p.Hairpin {
			if err := h.LinkSetHairpin(l, true); err != nil {
				return fmt.Errorf("set hairpin mode on %s, a port of a network's bridge: %w", a.Name, err)
			}
		}
		seen[a.Index] = a.Name
	}
	o.hairpin = seen
	return nil
}
