package overlay

import (
	"fmt"
	"maps"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The overlay keeps two sets of routes of its own in the main table, each
// marked by an rtnetlink protocol number (numbers above 4 are free for
// daemons; bird, zebra and others take some below 200): the networks'
// unreachable routes (pool.go) and the VIPs' (viproutes.go).
const (
	poolRouteProto = netlink.RouteProtocol(245)
	vipRouteProto  = netlink.RouteProtocol(246)
)

// protoRoutes lists the main table's IPv4 routes of proto.
func protoRoutes(h *netlink.Handle, proto netlink.RouteProtocol) ([]netlink.Route, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: proto}
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("list the node's routes: %w", err)
	}
	return rs, nil
}

// convergeProtoRoutes makes the routes of proto exactly want, keyed by
// destination: a route that matches its wanted one (type, device, source)
// stays, any other goes, and what is missing is added.
func convergeProtoRoutes(h *netlink.Handle, proto netlink.RouteProtocol, want map[netip.Prefix]netlink.Route, ch *Changes) error {
	have, err := protoRoutes(h, proto)
	if err != nil {
		return err
	}
	want = maps.Clone(want) // the caller's stays whole
	for i, r := range have {
		dst, ok := routeDst(r)
		if w, wanted := want[dst]; ok && wanted && r.Type == w.Type && r.LinkIndex == w.LinkIndex && r.Src.Equal(w.Src) {
			delete(want, dst)
			continue
		}
		if err := h.RouteDel(&have[i]); err != nil {
			return fmt.Errorf("remove the route to %s: %w", r.Dst, err)
		}
		ch.Removed++
	}
	for dst, r := range want {
		if err := h.RouteReplace(&r); err != nil {
			return fmt.Errorf("add the route to %s: %w", dst, err)
		}
		ch.Added++
	}
	return nil
}

// removeProtoRoutes deletes every route of proto.
func removeProtoRoutes(h *netlink.Handle, proto netlink.RouteProtocol) error {
	rs, err := protoRoutes(h, proto)
	if err != nil {
		return err
	}
	for i := range rs {
		if err := h.RouteDel(&rs[i]); err != nil {
			return fmt.Errorf("remove the route to %s: %w", rs[i].Dst, err)
		}
	}
	return nil
}
