package overlay

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/berth-dev/berth/internal/ipam"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// convergeVIPRoutes routes each VIP to the loopback device, from its
// network's gateway address on this node. The pool is routed unreachable
// (convergePoolRoute), and a connection the node's own processes open is
// routed before nat OUTPUT DNATs it: without a route of its own a VIP
// would be "no route to host" for them. From the gateway, a connection
// DNATed to a replica on another node comes from an address of the
// network, which the peer accepts. What is not DNATed is rejected on its
// way (BERTH-VIP-REJECT, in FORWARD for containers and OUTPUT for the
// node), and loopback would drop a packet for an address not the node's
// anyway. Not the network's bridge: a container's packet forwarded back
// out of the bridge it came by makes the node send an ICMP redirect to
// the VIP "on the link", and the client then waits for an ARP answer
// instead of taking the refusal. (This kernel has no dummy devices.) A
// VIP of a network whose bridge is not made yet (its first container is
// starting) gets its route on a later Apply.
func (o *Overlay) convergeVIPRoutes(h *netlink.Handle, d Desired, ch *Changes) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find the loopback device: %w", err)
	}
	dev := lo.Attrs().Index
	local, err := localAddrs(h)
	if err != nil {
		return err
	}
	want := map[netip.Prefix]netlink.Route{}
	for _, v := range d.VIPs {
		for _, n := range d.Networks {
			if n.Subnet != v.Subnet || !n.Slice.IsValid() {
				continue
			}
			if gw := ipam.Gateway(n.Slice); local[gw] {
				want[netip.PrefixFrom(v.Addr, 32)] = vipRoute(v.Addr, gw, dev)
			}
		}
	}
	return convergeProtoRoutes(h, vipRouteProto, want, ch)
}

func vipRoute(vip, gw netip.Addr, link int) netlink.Route {
	return netlink.Route{
		Dst:       &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(32, 32)},
		LinkIndex: link, Scope: netlink.SCOPE_LINK, Src: gw.AsSlice(), Type: unix.RTN_UNICAST,
		Table: unix.RT_TABLE_MAIN, Protocol: vipRouteProto,
	}
}

// localAddrs are the node's IPv4 addresses.
func localAddrs(h *netlink.Handle) (map[netip.Addr]bool, error) {
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	m := map[netip.Addr]bool{}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
			m[ip] = true
		}
	}
	return m, nil
}

func (o *Overlay) removeVIPRoutes(h *netlink.Handle) error {
	return removeProtoRoutes(h, vipRouteProto)
}
