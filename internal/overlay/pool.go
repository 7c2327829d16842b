package overlay

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// convergePoolRoute routes every cluster network's subnet unreachable:
// the bridges' and the overlay's own routes are more specific and win, and
// anything else of a network (a slice of a network this node is not on,
// an address nobody has) is refused at once instead of leaving by the
// default route, out of the cluster. It also isolates networks this node
// has no slice of, which the device's rules never see. Only the networks'
// subnets, never the whole pool: the rest of the pool is nobody's, and a
// machine's own resolver or route may sit there (10.255.255.53 does here).
func (o *Overlay) convergePoolRoute(h *netlink.Handle, d Desired, ch *Changes) error {
	want := map[netip.Prefix]netlink.Route{}
	for _, p := range d.Subnets {
		want[p.Masked()] = poolRoute(p.Masked())
	}
	return convergeProtoRoutes(h, poolRouteProto, want, ch)
}

func (o *Overlay) removePoolRoutes(h *netlink.Handle) error {
	return removeProtoRoutes(h, poolRouteProto)
}

func poolRoute(p netip.Prefix) netlink.Route {
	return netlink.Route{
		Dst:      &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)},
		Type:     unix.RTN_UNREACHABLE,
		Table:    unix.RT_TABLE_MAIN,
		Protocol: poolRouteProto,
	}
}
