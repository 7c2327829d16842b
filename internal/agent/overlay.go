package agent

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/ipam"
	"github.com/berth-dev/berth/internal/overlay"
	"github.com/berth-dev/berth/internal/types"
)

// netState is what the task loop reads of the overlay, from its own
// goroutine: the MTU of the containers' networks, known once the network
// map named this node's underlay address.
type netState struct {
	mtu atomic.Int64
	// noMap: the manager answered the network map with 404 (it has no
	// overlay); tasks' networks are then local ones.
	noMap atomic.Bool
}

// kernelOverlay is what the agent needs of package overlay's Overlay;
// tests put a fake in Agent.newOverlay, which would otherwise change the
// machine's own network namespace.
type kernelOverlay interface {
	Apply(ctx context.Context, d overlay.Desired) (overlay.Changes, error)
	Remove(ctx context.Context) error
	MTU() (int, error)
	Routes(d overlay.Desired) ([]ipam.Taken, error)
}

func newKernelOverlay(underlay netip.Addr) (kernelOverlay, error) {
	return overlay.New(overlay.Config{Underlay: underlay})
}

// nodeOverlay converges this node's overlay (package overlay) to every
// network map. It is a netmap subscriber: only the fan-out goroutine
// calls it.
type nodeOverlay struct {
	a        *Agent
	ov       kernelOverlay
	underlay netip.Addr
	// checked: the pool and the networks' subnets were checked against
	// the node's routes and resolvers, once each; overlaps holds those
	// that overlap one (the check is a warning, not a refusal, but an
	// overlapping pool is not routed unreachable).
	checked  map[netip.Prefix]bool
	overlaps map[netip.Prefix]bool
	// resolvConf is read for the node's resolvers (tests change it).
	resolvConf string
	// lastErr is the last Apply error logged, so a failure that repeats
	// on every map and timer is logged once until it changes.
	lastErr string
}

// startNetworking subscribes the overlay to the network map, first, and
// starts the map's watch and fan-out on wg.
func (a *Agent) startNetworking(ctx context.Context, wg *sync.WaitGroup) {
	n := &nodeOverlay{a: a, checked: map[netip.Prefix]bool{}, overlaps: map[netip.Prefix]bool{}, resolvConf: resolvConf}
	a.netMap.mu.Lock()
	a.netMap.fns = append([]func(context.Context, *api.NetworkMap){n.apply}, a.netMap.fns...)
	a.netMap.mu.Unlock()
	mailbox := make(chan *api.NetworkMap, 1)
	wg.Go(func() { a.watchNetMap(ctx, mailbox) })
	wg.Go(func() { a.fanOutNetMap(ctx, mailbox, netMapReapply) })
}

// apply converges the overlay to m. A failure is logged and retried with
// the next map or tick; it never stops the node's tasks.
func (n *nodeOverlay) apply(ctx context.Context, m *api.NetworkMap) {
	self := n.a.NodeID()
	underlay, listed := selfUnderlay(m, self)
	if listed && (!underlay.Is4() || underlay.IsUnspecified()) {
		n.fail("the network map gives this node no IPv4 underlay address (its API address; give the agent a specific --listen address); no overlay here",
			fmt.Errorf("underlay %q", underlay))
		return
	}
	if !listed {
		if n.ov != nil && len(m.Nodes) > 0 {
			// The cluster no longer has this node: its overlay goes.
			if err := n.ov.Remove(ctx); err != nil {
				n.a.log.Warn("remove the overlay of a node that left the cluster", "err", err)
			}
			n.ov = nil
		}
		return
	}
	if n.ov == nil || underlay != n.underlay {
		if !n.setUp(underlay) {
			return
		}
	}
	d, bad := desiredFromMap(m, self)
	for _, err := range bad {
		n.a.log.Warn("network map entry skipped", "err", err)
	}
	n.checkPool(d)
	// Routed unreachable, a network's subnet would cut the node off from
	// what it overlaps (seen: the machine's resolver in 10.240.0.0/12).
	d.Subnets = slices.DeleteFunc(d.Subnets, func(p netip.Prefix) bool { return n.overlaps[p] })
	if _, err := n.ov.Apply(ctx, d); err != nil {
		n.fail("apply the overlay failed; will retry on the next map (tasks on this node keep running)", err)
		return
	}
	if n.lastErr != "" {
		n.a.log.Info("overlay applied again after a failure")
	}
	n.lastErr = ""
}

// fail logs a failure once until it changes, and lets tasks start with
// the MTU of an Ethernet underlay if the overlay's is not known: a node
// whose overlay cannot be set up still runs its tasks.
func (n *nodeOverlay) fail(msg string, err error) {
	if err.Error() != n.lastErr {
		n.a.log.Error(msg, "err", err)
	}
	n.lastErr = err.Error()
	n.a.net.mtu.CompareAndSwap(0, fallbackMTU)
}

// fallbackMTU is an Ethernet underlay's less the encapsulation.
const fallbackMTU = 1500 - 50

// setUp makes the node's Overlay for its underlay address and learns the
// containers' MTU.
func (n *nodeOverlay) setUp(underlay netip.Addr) bool {
	newOv := n.a.newOverlay
	if newOv == nil {
		newOv = newKernelOverlay
	}
	ov, err := newOv(underlay)
	if err != nil {
		n.fail("the network map gives this node an unusable underlay address; no overlay", err)
		return false
	}
	mtu, err := ov.MTU()
	if err != nil {
		n.fail("find the overlay's MTU (is the node's address in the map one of its own?); no overlay until it is found", err)
		return false
	}
	n.ov, n.underlay = ov, underlay
	n.a.net.mtu.Store(int64(containerMTU(underlay, mtu)))
	n.a.log.Info("overlay set up", "underlay", underlay, "mtu", n.a.net.mtu.Load())
	return true
}

// containerMTU is the MTU of containers' networks: the overlay's, but on a
// node whose underlay is loopback (a one-node dev cluster) that of an
// Ethernet underlay, as loopback's 64 KiB would be wrong for anything
// leaving the machine.
func containerMTU(underlay netip.Addr, mtu int) int {
	if underlay.IsLoopback() {
		return min(mtu, fallbackMTU)
	}
	return mtu
}

// checkPool warns, once per prefix, when a cluster network's subnet
// overlaps a route of this node other than the overlay's
// own: containers could then not reach what that route leads to.
func (n *nodeOverlay) checkPool(d overlay.Desired) {
	var todo []netip.Prefix
	for _, p := range d.Subnets { // every network's, this node's among them
		if !n.checked[p] {
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		return
	}
	taken, err := n.ov.Routes(d)
	if err != nil {
		n.a.log.Warn("list the node's routes to check the address pool", "err", err)
		return
	}
	for _, r := range nodeResolvers(n.resolvConf) {
		if ap, err := netip.ParseAddrPort(r); err == nil && ap.Addr().Is4() {
			taken = append(taken, ipam.Taken{Prefix: netip.PrefixFrom(ap.Addr(), 32), What: "this node's resolver (" + n.resolvConf + ")"})
		}
	}
	for _, s := range todo {
		n.checked[s] = true
		if err := ipam.CheckPool(s, taken); err != nil {
			n.overlaps[s] = true
			n.a.log.Error("the cluster's address pool overlaps this node's addresses; containers cannot reach them, and the pool is not routed here: set another pool (berth server --address-pool)", "subnet", s, "err", err)
		}
	}
}

// selfUnderlay is node self's underlay address in m (invalid if it does
// not parse) and whether m lists the node.
func selfUnderlay(m *api.NetworkMap, self string) (netip.Addr, bool) {
	for _, nd := range m.Nodes {
		if nd.ID == self {
			a, _ := netip.ParseAddr(nd.Underlay)
			return a, true
		}
	}
	return netip.Addr{}, false
}

// desiredFromMap is node self's overlay in m: the networks it has a slice
// of, the other nodes with slices of them, and the VIPs of the services on
// them with their serving replicas. Entries that do not parse are left out
// and returned as errors. The result is sorted: equal maps give equal
// values.
func desiredFromMap(m *api.NetworkMap, self string) (overlay.Desired, []error) {
	var d overlay.Desired
	var bad []error
	for _, nw := range m.Networks {
		if p, err := netip.ParsePrefix(nw.Subnet); err == nil && p.Addr().Is4() {
			d.Subnets = append(d.Subnets, p.Masked())
		}
	}
	underlays := map[string]netip.Addr{}
	for _, nd := range m.Nodes {
		if a, err := netip.ParseAddr(nd.Underlay); err == nil && usableUnderlay(a) {
			underlays[nd.ID] = a
		} else if nd.ID != self {
			bad = append(bad, fmt.Errorf("node %s: underlay %q is not an IPv4 address", nd.ID, nd.Underlay))
		}
	}
	mine := map[string]bool{} // network keys this node has a slice of
	peers := map[string]*overlay.Peer{}
	for _, nw := range m.Networks {
		subnet, err := netip.ParsePrefix(nw.Subnet)
		slice, err2 := netip.ParsePrefix(nw.Slices[self])
		if err != nil || err2 != nil {
			if err != nil || nw.Slices[self] != "" {
				bad = append(bad, fmt.Errorf("network %s: subnet %q or this node's slice %q does not parse", nw.Key, nw.Subnet, nw.Slices[self]))
			}
			continue
		}
		mine[nw.Key] = true
		d.Networks = append(d.Networks, overlay.Network{Subnet: subnet, Slice: slice})
		for node, s := range nw.Slices {
			u, known := underlays[node]
			p, err := netip.ParsePrefix(s)
			if node == self || !known || err != nil {
				continue
			}
			if peers[node] == nil {
				peers[node] = &overlay.Peer{Underlay: u}
			}
			peers[node].Slices = append(peers[node].Slices, p)
		}
	}
	for _, p := range peers {
		slices.SortFunc(p.Slices, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		d.Peers = append(d.Peers, *p)
	}
	slices.SortFunc(d.Peers, func(a, b overlay.Peer) int { return a.Underlay.Compare(b.Underlay) })
	d.VIPs = vipsFromMap(m, mine)
	for i := range d.VIPs {
		d.VIPs[i].Backends = slices.DeleteFunc(d.VIPs[i].Backends, func(b netip.Addr) bool { return !routed(d, b) })
	}
	d.LocalPorts = localPortsFromMap(m, self)
	return d, bad
}

// localPortsFromMap lists the published ingress ports of local-mode
// services (x-berth-mesh: local) that have serving replicas on this node,
// with those replicas' addresses: the kernel DNATs them so the replicas
// see the client's own address (overlay.LocalPort).
func localPortsFromMap(m *api.NetworkMap, self string) []overlay.LocalPort {
	var out []overlay.LocalPort
	for _, svc := range m.Services {
		if svc.Mesh != types.MeshLocal {
			continue
		}
		var backends []netip.Addr
		for _, ep := range svc.Endpoints {
			if ep.NodeID != self {
				continue
			}
			for _, att := range svc.Networks { // the first network it has an address on
				if a, err := netip.ParseAddr(ep.Addresses[att.Network]); err == nil && a.Is4() {
					backends = append(backends, a)
					break
				}
			}
		}
		if len(backends) == 0 {
			continue
		}
		slices.SortFunc(backends, netip.Addr.Compare)
		for _, p := range svc.Ports {
			if p.Published == 0 || p.Mode != types.PortIngress {
				continue
			}
			lp := overlay.LocalPort{Proto: cmp.Or(p.Protocol, "tcp"), Published: p.Published, Target: p.Target, Backends: backends}
			if p.HostIP != "" {
				a := listenAddr(p.HostIP)
				if a.IsLoopback() || !a.Is4() {
					continue // never from outside: the node's own clients reach the proxy
				}
				if !a.IsUnspecified() {
					lp.Dst = a
				}
			}
			out = append(out, lp)
		}
	}
	slices.SortFunc(out, func(a, b overlay.LocalPort) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Published, b.Published))
	})
	return out
}

// routed reports whether a is in a slice d routes: this node's or a
// peer's. A replica on a node the map gives no address would take
// connections into a black hole.
func routed(d overlay.Desired, a netip.Addr) bool {
	for _, n := range d.Networks {
		if n.Slice.Contains(a) {
			return true
		}
	}
	for _, p := range d.Peers {
		for _, s := range p.Slices {
			if s.Contains(a) {
				return true
			}
		}
	}
	return false
}

// vipsFromMap lists the VIPs of services on the networks in mine, each
// with the ports the service lists (its targets) and the addresses of its
// serving replicas on that network.
func vipsFromMap(m *api.NetworkMap, mine map[string]bool) []overlay.VIP {
	var vips []overlay.VIP
	for _, svc := range m.Services {
		for _, att := range svc.Networks {
			vip, err := netip.ParseAddr(att.VIP)
			if !mine[att.Network] || err != nil || !vip.Is4() {
				continue
			}
			v := overlay.VIP{Addr: vip, Subnet: subnetOf(m, att.Network)}
			for _, p := range svc.Ports {
				vp := overlay.VIPPort{Proto: cmp.Or(p.Protocol, "tcp"), Port: p.Target}
				if p.Target > 0 && !slices.Contains(v.Ports, vp) {
					v.Ports = append(v.Ports, vp)
				}
			}
			for _, ep := range svc.Endpoints {
				if a, err := netip.ParseAddr(ep.Addresses[att.Network]); err == nil && a.Is4() && !slices.Contains(v.Backends, a) {
					v.Backends = append(v.Backends, a)
				}
			}
			slices.SortFunc(v.Ports, func(a, b overlay.VIPPort) int {
				return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port))
			})
			slices.SortFunc(v.Backends, netip.Addr.Compare)
			vips = append(vips, v)
		}
	}
	slices.SortFunc(vips, func(a, b overlay.VIP) int { return a.Addr.Compare(b.Addr) })
	return vips
}

// usableUnderlay: an address another node's VXLAN packets can be sent to.
func usableUnderlay(a netip.Addr) bool {
	return a.Is4() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback()
}

func subnetOf(m *api.NetworkMap, key string) netip.Prefix {
	for _, nw := range m.Networks {
		if nw.Key == key {
			p, _ := netip.ParsePrefix(nw.Subnet)
			return p
		}
	}
	return netip.Prefix{}
}

// taskSlices is the driver's Slices for t (TaskConfig.Slices): this node's
// slice of each of the service's networks, from NodeTasks, with its
// gateway and the overlay's MTU. wait says why not yet, while the overlay
// is on and a network the task needs has no slice yet, or the MTU is not
// known yet: the task then waits for a later NodeTasks (the manager
// allocates the slice with the placement, so this is rare) or the next
// poll. An external network has a slice only if it is a cluster network;
// one made outside berth is used as it is.
func (l *loop) taskSlices(t *types.Task, svc *types.Service) (out map[string]driver.Slice, wait string) {
	if !l.a.cfg.Overlay || l.a.net.noMap.Load() || (svc.Driver != "" && svc.Driver != types.DriverDocker) {
		return nil, ""
	}
	res := l.desired.Apps[t.App]
	mtu := int(l.a.net.mtu.Load())
	out = map[string]driver.Slice{}
	for _, att := range svc.Networks {
		var cidr string
		if res != nil {
			cidr = res.Slices[att.Name]
		}
		p, err := netip.ParsePrefix(cidr)
		external := res != nil && res.Networks[att.Name] != nil && res.Networks[att.Name].External
		switch {
		case err == nil && mtu > 0:
			out[att.Name] = driver.Slice{Subnet: p.Masked(), Gateway: ipam.Gateway(p), MTU: mtu}
		case err == nil:
			return nil, "waiting for the node's overlay to be set up (the cluster's network map)"
		case !external:
			return nil, "waiting for the node's slice of network " + att.Name
		}
	}
	return out, ""
}
