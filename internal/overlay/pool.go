package overlay

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// poolRouteProto marks the pool's unreachable route as the overlay's
// (rtnetlink protocol numbers above 4 are free for daemons; bird, zebra
// and others take some below 200).
const poolRouteProto = netlink.RouteProtocol(245)

// convergePoolRoute routes the cluster's address pool unreachable: the
// bridges' and the overlay's own routes are more specific and win, and
// anything else of the pool (a slice of a network this node is not on,
// an address nobody has) is refused at once instead of leaving by the
// default route, out of the cluster. It also isolates networks this node
// has no slice of, which the device's rules never see.
func (o *Overlay) convergePoolRoute(h *netlink.Handle, d Desired, ch *Changes) error {
	have, err := o.poolRoutes(h)
	if err != nil {
		return err
	}
	for _, r := range have {
		if d.Pool.IsValid() && r.Dst != nil && r.Dst.String() == d.Pool.String() {
			return nil
		}
	}
	if err := o.removePoolRoutes(h); err != nil {
		return err
	}
	if !d.Pool.IsValid() {
		return nil
	}
	r := poolRoute(d.Pool)
	if err := h.RouteReplace(&r); err != nil {
		return fmt.Errorf("route the address pool %s unreachable: %w", d.Pool, err)
	}
	ch.Added++
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
