package overlay

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"

	"github.com/berth-dev/berth/internal/ipam"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Each converge step lists what is on the device, adds or replaces what d
// wants and is not there as wanted, and deletes what d does not want.
// Everything on the device is the overlay's: nothing else puts entries on
// a device berth made.

func (o *Overlay) convergeAddrs(h *netlink.Handle, idx int, d Desired, ch *Changes) error {
	want := map[netip.Addr]bool{}
	for _, n := range d.Networks {
		if n.Slice.IsValid() {
			want[ipam.VTEP(n.Slice)] = true
		}
	}
	link := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: idx}}
	have, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list the overlay's addresses: %w", err)
	}
	for _, a := range have {
		ip, _ := netip.AddrFromSlice(a.IP.To4())
		if ones, _ := a.Mask.Size(); want[ip] && ones == 32 {
			delete(want, ip)
			continue
		}
		if err := h.AddrDel(link, &a); err != nil {
			return fmt.Errorf("remove address %s from the overlay: %w", a.IPNet, err)
		}
		ch.Removed++
	}
	for ip := range want {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}}
		if err := h.AddrAdd(link, a); err != nil {
			return fmt.Errorf("add address %s to the overlay: %w", ip, err)
		}
		ch.Added++
	}
	return nil
}

func (o *Overlay) convergeFDB(h *netlink.Handle, idx int, d Desired, ch *Changes) error {
	want := map[string]netip.Addr{} // MAC -> underlay
	for _, p := range d.Peers {
		want[peerMAC(p).String()] = p.Underlay
	}
	have, err := h.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("list the overlay's forwarding entries: %w", err)
	}
	for _, n := range have {
		dst, _ := netip.AddrFromSlice(n.IP.To4())
		if u, ok := want[n.HardwareAddr.String()]; ok && u == dst && n.State&unix.NUD_PERMANENT != 0 {
			delete(want, n.HardwareAddr.String())
			continue
		}
		if err := h.NeighDel(&n); err != nil {
			return fmt.Errorf("remove forwarding entry %s to %s: %w", n.HardwareAddr, n.IP, err)
		}
		ch.Removed++
	}
	for mac, u := range want {
		hw, _ := net.ParseMAC(mac)
		n := &netlink.Neigh{
			LinkIndex: idx, Family: unix.AF_BRIDGE, State: unix.NUD_PERMANENT,
			Flags: unix.NTF_SELF, HardwareAddr: hw, IP: u.AsSlice(),
		}
		if err := h.NeighSet(n); err != nil {
			return fmt.Errorf("add forwarding entry %s to %s: %w", mac, u, err)
		}
		ch.Added++
	}
	return nil
}

func (o *Overlay) convergeNeighs(h *netlink.Handle, idx int, d Desired, ch *Changes) error {
	want := map[netip.Addr]net.HardwareAddr{} // peer VTEP -> peer MAC
	for _, p := range d.Peers {
		for _, s := range p.Slices {
			want[ipam.VTEP(s)] = peerMAC(p)
		}
	}
	have, err := h.NeighList(idx, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list the overlay's neighbour entries: %w", err)
	}
	for _, n := range have {
		ip, _ := netip.AddrFromSlice(n.IP.To4())
		if mac, ok := want[ip]; ok && bytes.Equal(mac, n.HardwareAddr) && n.State == unix.NUD_PERMANENT {
			delete(want, ip)
			continue
		}
		if err := h.NeighDel(&n); err != nil {
			return fmt.Errorf("remove neighbour entry %s: %w", n.IP, err)
		}
		ch.Removed++
	}
	for ip, mac := range want {
		n := &netlink.Neigh{
			LinkIndex: idx, Family: netlink.FAMILY_V4, State: unix.NUD_PERMANENT,
			IP: ip.AsSlice(), HardwareAddr: mac,
		}
		if err := h.NeighSet(n); err != nil {
			return fmt.Errorf("add neighbour entry %s at %s: %w", ip, mac, err)
		}
		ch.Added++
	}
	return nil
}

func (o *Overlay) convergeRoutes(h *netlink.Handle, idx int, d Desired, ch *Changes) error {
	want := map[netip.Prefix]bool{} // a peer slice, routed via its VTEP
	for _, p := range d.Peers {
		for _, s := range p.Slices {
			want[s] = true
		}
	}
	filter := &netlink.Route{LinkIndex: idx, Table: unix.RT_TABLE_MAIN}
	have, err := h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list the overlay's routes: %w", err)
	}
	for _, r := range have {
		if dst, ok := routeDst(r); ok && want[dst] && r.Gw.Equal(ipam.VTEP(dst).AsSlice()) && r.Flags&int(netlink.FLAG_ONLINK) != 0 {
			delete(want, dst)
			continue
		}
		if err := h.RouteDel(&r); err != nil {
			return fmt.Errorf("remove route %s: %w", r.Dst, err)
		}
		ch.Removed++
	}
	for s := range want {
		r := &netlink.Route{
			LinkIndex: idx, Table: unix.RT_TABLE_MAIN, Scope: netlink.SCOPE_UNIVERSE,
			Dst: &net.IPNet{IP: s.Addr().AsSlice(), Mask: net.CIDRMask(s.Bits(), 32)},
			Gw:  ipam.VTEP(s).AsSlice(), Flags: int(netlink.FLAG_ONLINK),
		}
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("add route %s via %s: %w", s, ipam.VTEP(s), err)
		}
		ch.Added++
	}
	return nil
}

func routeDst(r netlink.Route) (netip.Prefix, bool) {
	if r.Dst == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(r.Dst.IP.To4())
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(ip, ones), ok
}

func peerMAC(p Peer) net.HardwareAddr {
	if p.MAC != nil {
		return p.MAC
	}
	return MACFor(p.Underlay)
}
