package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// ensureLink returns the overlay's device, up and as configured: made if
// missing, remade if its VXLAN settings are not the configured ones (a
// changed VNI or underlay cannot be changed in place), its MTU set.
func (o *Overlay) ensureLink(h *netlink.Handle, ch *Changes) (netlink.Link, error) {
	under, err := o.underlayLink(h)
	if err != nil {
		return nil, err
	}
	want := o.wantLink(under)
	l, err := o.ourLink(h)
	if err != nil {
		return nil, err
	}
	if l != nil && !sameVxlan(l.(*netlink.Vxlan), want) {
		if err := h.LinkDel(l); err != nil {
			return nil, fmt.Errorf("delete device %s to remake it: %w", o.cfg.Device, err)
		}
		ch.Removed++
		l = nil
	}
	if l == nil {
		if l, err = o.addLink(h, want); err != nil {
			return nil, err
		}
		ch.Added++
	}
	if l.Attrs().MTU != want.MTU {
		if err := h.LinkSetMTU(l, want.MTU); err != nil {
			return nil, fmt.Errorf("set device %s's MTU to %d: %w", o.cfg.Device, want.MTU, err)
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("set device %s up: %w", o.cfg.Device, err)
		}
	}
	return l, nil
}

func (o *Overlay) wantLink(under netlink.Link) *netlink.Vxlan {
	return &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{
			Name:         o.cfg.Device,
			MTU:          under.Attrs().MTU - overhead,
			HardwareAddr: MACFor(o.cfg.Underlay),
		},
		VxlanId:      o.cfg.VNI,
		VtepDevIndex: under.Attrs().Index,
		SrcAddr:      o.cfg.Underlay.AsSlice(),
		Port:         o.cfg.Port,
		Learning:     false,
	}
}

func (o *Overlay) addLink(h *netlink.Handle, want *netlink.Vxlan) (netlink.Link, error) {
	if err := h.LinkAdd(want); err != nil {
		return nil, fmt.Errorf("make VXLAN device %s (VNI %d, port %d): %w", o.cfg.Device, o.cfg.VNI, o.cfg.Port, err)
	}
	l, err := h.LinkByName(o.cfg.Device)
	if err != nil {
		return nil, fmt.Errorf("find the new device %s: %w", o.cfg.Device, err)
	}
	// The kernel ignores an alias given at creation.
	if err := h.LinkSetAlias(l, alias); err != nil {
		return nil, fmt.Errorf("mark device %s as berth's: %w", o.cfg.Device, err)
	}
	return l, nil
}

// ourLink returns the overlay's device, nil if there is none, ErrNotOurs
// if a device of its name is not berth's VXLAN device.
func (o *Overlay) ourLink(h *netlink.Handle) (netlink.Link, error) {
	l, err := h.LinkByName(o.cfg.Device)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up device %s: %w", o.cfg.Device, err)
	}
	if _, ok := l.(*netlink.Vxlan); !ok || l.Attrs().Alias != alias {
		return nil, fmt.Errorf("a device named %s exists and berth did not make it: remove it or give the overlay another device name: %w", o.cfg.Device, ErrNotOurs)
	}
	return l, nil
}

// underlayLink is the device that holds the underlay address.
func (o *Overlay) underlayLink(h *netlink.Handle) (netlink.Link, error) {
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if a.IP.Equal(o.cfg.Underlay.AsSlice()) {
			l, err := h.LinkByIndex(a.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("find the device of the underlay address %s: %w", o.cfg.Underlay, err)
			}
			return l, nil
		}
	}
	return nil, fmt.Errorf("no device here has the underlay address %s: give the node's own address on the network between nodes: %w", o.cfg.Underlay, ErrInvalid)
}

// sameVxlan compares what cannot change on a live device.
func sameVxlan(got, want *netlink.Vxlan) bool {
	return got.VxlanId == want.VxlanId && got.Port == want.Port &&
		got.VtepDevIndex == want.VtepDevIndex && got.SrcAddr.Equal(want.SrcAddr) &&
		!got.Learning && bytes.Equal(got.HardwareAddr, want.HardwareAddr)
}
