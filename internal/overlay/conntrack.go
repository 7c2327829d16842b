package overlay

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/ipam"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// flushUDP deletes the conntrack entries of UDP flows to a VIP whose
// replica no longer serves (or that were refused while it had none): a
// UDP "connection" has no end, so without this its datagrams would go on
// to the old replica (or be refused) for as long as the client keeps
// sending. TCP connections are left to finish.
//
// Finding them dumps the whole conntrack table, which on a busy host is
// most of an Apply's cost, and an Apply comes with every replica that
// starts serving: so it runs only when a replica left a VIP (or a VIP
// that had none got some), never when a deploy only adds replicas.
func (o *Overlay) flushUDP(h *netlink.Handle, d Desired) error {
	now := udpVIPs(d)
	if maps.Equal(now, o.udp) {
		return nil
	}
	if !udpFlowsMayBeStale(o.udp, now) {
		o.udp = now
		return nil
	}
	f := &staleUDP{serving: map[netip.Addr]map[netip.Addr]bool{}}
	for _, v := range d.VIPs {
		if _, ok := now[v.Addr]; !ok {
			continue
		}
		f.serving[v.Addr] = map[netip.Addr]bool{}
		for _, b := range v.Backends {
			f.serving[v.Addr][b] = true
		}
	}
	for vip := range o.udp {
		if f.serving[vip] == nil {
			f.serving[vip] = map[netip.Addr]bool{} // gone: all of its flows go
		}
	}
	if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f); err != nil {
		return fmt.Errorf("delete the conntrack entries of UDP flows to replicas that left: %w", err)
	}
	o.udp = now
	return nil
}

// udpFlowsMayBeStale reports whether going from the UDP VIPs' backends
// prev to now (udpVIPs) can leave a flow to a replica that no longer
// serves: a VIP went, lost a backend, or had none (its flows refused).
func udpFlowsMayBeStale(prev, now map[netip.Addr]string) bool {
	for vip, was := range prev {
		is, ok := now[vip]
		if !ok || (was == "" && is != "") {
			return true
		}
		kept := strings.Split(is, ",")
		for _, b := range strings.Split(was, ",") {
			if b != "" && !slices.Contains(kept, b) {
				return true
			}
		}
	}
	return false
}

// staleUDP matches UDP flows sent to one of the VIPs whose replier is not
// one of that VIP's serving replicas.
type staleUDP struct {
	serving map[netip.Addr]map[netip.Addr]bool
}

func (f *staleUDP) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if flow.Forward.Protocol != unix.IPPROTO_UDP {
		return false
	}
	dst, _ := netip.AddrFromSlice(flow.Forward.DstIP.To4())
	serving, ok := f.serving[dst]
	if !ok {
		return false
	}
	from, _ := netip.AddrFromSlice(flow.Reverse.SrcIP.To4())
	return !serving[from]
}

// Routes lists the node's IPv4 routes but the overlay's own (on its
// device, the pool's and the VIPs', and the bridges of d's slices), as
// ipam.CheckPool takes them:
// a cluster subnet overlapping one hides what the route leads to.
func (o *Overlay) Routes(d Desired) ([]ipam.Taken, error) {
	h, err := o.handle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	own := map[netip.Prefix]bool{}
	for _, n := range d.Networks {
		own[n.Slice] = true
	}
	dev, _ := o.ourLink(h)
	var taken []ipam.Taken
	for _, r := range routes {
		if r.Dst == nil || (dev != nil && r.LinkIndex == dev.Attrs().Index) ||
			r.Protocol == poolRouteProto || r.Protocol == vipRouteProto {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok {
			continue
		}
		p := netip.PrefixFrom(a, ones)
		if own[p] {
			continue
		}
		name := fmt.Sprintf("a route of this node (device index %d)", r.LinkIndex)
		if l, err := h.LinkByIndex(r.LinkIndex); err == nil {
			name = "a route of this node via " + l.Attrs().Name
		}
		taken = append(taken, ipam.Taken{Prefix: p, What: name})
	}
	return taken, nil
}
