package overlay

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// poolRouteProto marks the networks' unreachable routes as the overlay's
// (rtnetlink protocol numbers above 4 are free for daemons; bird, zebra
// and others take some below 200).
const poolRouteProto = netlink.RouteProtocol(245)

// convergePoolRoute routes every cluster network's subnet unreachable:
// the bridges' and the overlay's own routes are more specific and win, and
// anything else of a network (a slice of a network this node is not on,
// an address nobody has) is refused at once instead of leaving by the
// default route, out of the cluster. It also isolates networks this node
// has no slice of, which the device's rules never see. Only the networks'
// subnets, never the whole pool: the rest of the pool is nobody's, and a
// machine's own resolver or route may sit there (10.255.255.53 does here).
func (o *Overlay) convergePoolRoute(h *netlink.Handle, d Desired, ch *Changes) error {
	have, err := o.poolRoutes(h)
	if err != nil {
		return err
	}
	want := map[netip.Prefix]bool{}
	for _, p := range d.Subnets {
		want[p.Masked()] = true
	}
	for i := range have {
		dst, ok := routeDst(have[i])
		if ok && want[dst] {
			delete(want, dst)
			continue
		}
		if err := h.RouteDel(&have[i]); err != nil {
			return fmt.Errorf("remove the unreachable route %s: %w", have[i].Dst, err)
		}
		ch.Removed++
	}
	for p := range want {
		r := poolRoute(p)
		if err := h.RouteReplace(&r); err != nil {
			return fmt.Errorf("route network %s unreachable outside its slices: %w", p, err)
		}
		ch.Added++
	}
	return nil
}

// poolRoutes lists the overlay's unreachable routes in the main table.
func (o *Overlay) poolRoutes(h *netlink.Handle) ([]netlink.Route, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: poolRouteProto}
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("list the node's routes: %w", err)
	}
	return rs, nil
}

func (o *Overlay) removePoolRoutes(h *netlink.Handle) error {
	rs, err := o.poolRoutes(h)
	if err != nil {
		return err
	}
	for i := range rs {
		if err := h.RouteDel(&rs[i]); err != nil {
			return fmt.Errorf("remove the address pool's route %s: %w", rs[i].Dst, err)
		}
	}
	return nil
}

func poolRoute(p netip.Prefix) netlink.Route {
	return netlink.Route{
		Dst:      &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)},
		Type:     unix.RTN_UNREACHABLE,
		Table:    unix.RT_TABLE_MAIN,
		Protocol: poolRouteProto,
	}
}
