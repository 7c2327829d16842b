package overlay

import (
	"bytes"
	"fmt"
	"net/netip"
)

// check validates d: IPv4 throughout, bounded counts, networks apart, each
// slice inside its network and apart from every other, one peer per
// underlay address and per MAC, none of them this node.
func (o *Overlay) check(d Desired) error {
	if len(d.Networks) > maxEntries || len(d.Peers) > maxEntries {
		return fmt.Errorf("%d networks and %d peers: at most %d of each: %w", len(d.Networks), len(d.Peers), maxEntries, ErrInvalid)
	}
	var slices []netip.Prefix
	for i, n := range d.Networks {
		if !v4(n.Subnet) {
			return fmt.Errorf("networks[%d].subnet %q is not an IPv4 prefix: %w", i, n.Subnet, ErrInvalid)
		}
		for _, m := range d.Networks[:i] {
			if m.Subnet.Overlaps(n.Subnet) {
				return fmt.Errorf("networks[%d].subnet %s overlaps %s: %w", i, n.Subnet, m.Subnet, ErrInvalid)
			}
		}
		if n.Slice.IsValid() {
			if err := o.checkSlice(d, n.Slice, slices, fmt.Sprintf("networks[%d].slice", i)); err != nil {
				return err
			}
			slices = append(slices, n.Slice)
		}
	}
	if err := o.checkPeers(d, slices); err != nil {
		return err
	}
	if err := o.checkLocalPorts(d); err != nil {
		return err
	}
	return o.checkVIPs(d)
}

func (o *Overlay) checkPeers(d Desired, slices []netip.Prefix) error {
	for i, p := range d.Peers {
		field := fmt.Sprintf("peers[%d]", i)
		if !p.Underlay.Is4() || p.Underlay == o.cfg.Underlay {
			return fmt.Errorf("%s.underlay %q must be another node's IPv4 address: %w", field, p.Underlay, ErrInvalid)
		}
		if p.MAC != nil && (len(p.MAC) != 6 || p.MAC[0]&1 == 1) {
			return fmt.Errorf("%s.mac %s is not a unicast Ethernet address: %w", field, p.MAC, ErrInvalid)
		}
		if len(p.Slices) > maxEntries {
			return fmt.Errorf("%s has %d slices: at most %d: %w", field, len(p.Slices), maxEntries, ErrInvalid)
		}
		for _, q := range d.Peers[:i] {
			if q.Underlay == p.Underlay || bytes.Equal(peerMAC(q), peerMAC(p)) {
				return fmt.Errorf("%s has the underlay address or MAC of another peer (%s): %w", field, q.Underlay, ErrInvalid)
			}
		}
		for j, s := range p.Slices {
			if err := o.checkSlice(d, s, slices, fmt.Sprintf("%s.slices[%d]", field, j)); err != nil {
				return err
			}
			slices = append(slices, s)
		}
	}
	return nil
}

// checkSlice: s is IPv4, in one of d's networks, apart from seen.
func (o *Overlay) checkSlice(d Desired, s netip.Prefix, seen []netip.Prefix, field string) error {
	if !v4(s) || s.Bits() > 30 {
		return fmt.Errorf("%s %q is not an IPv4 prefix of /30 or shorter: %w", field, s, ErrInvalid)
	}
	in := false
	for _, n := range d.Networks {
		in = in || (n.Subnet.Bits() <= s.Bits() && n.Subnet.Contains(s.Addr()))
	}
	if !in {
		return fmt.Errorf("%s %s is in none of the networks: %w", field, s, ErrInvalid)
	}
	for _, t := range seen {
		if t.Overlaps(s) {
			return fmt.Errorf("%s %s overlaps slice %s: %w", field, s, t, ErrInvalid)
		}
	}
	return nil
}

func v4(p netip.Prefix) bool { return p.IsValid() && p.Addr().Is4() && p == p.Masked() }
