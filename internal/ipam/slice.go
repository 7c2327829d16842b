package ipam

import (
	"fmt"
	"net/netip"
)

// Slice hands out the container addresses of one node's slice: from the
// third address (after the VTEP and the gateway) to the one before the
// broadcast, next-fit. Whoever gives a slice's containers their addresses
// (the node's agent, or the FSM) keeps one Slice per slice and is its only
// allocator.
type Slice struct {
	Prefix netip.Prefix `json:"prefix"`
	Addrs  blocks       `json:"addrs"`
}

// NewSlice returns an empty Slice of p, an IPv4 prefix of /16 to /29.
func NewSlice(p netip.Prefix) (*Slice, error) {
	if !p.IsValid() || !p.Addr().Is4() || p.Bits() < 16 || p.Bits() > 29 {
		return nil, fmt.Errorf("slice %q must be an IPv4 prefix of /16 to /29: %w", p, ErrInvalid)
	}
	return &Slice{Prefix: p.Masked()}, nil
}

// Take returns owner's address, allocating one if it has none.
func (s *Slice) Take(owner string) (netip.Addr, error) {
	if err := checkOwner("task", owner); err != nil {
		return netip.Addr{}, err
	}
	i, ok := s.Addrs.take(owner, 2, s.size()-1, nil)
	if !ok {
		return netip.Addr{}, fmt.Errorf("slice %s has no free address for %s: its %d are taken: %w", s.Prefix, owner, s.size()-3, ErrExhausted)
	}
	return nth(s.Prefix, i), nil
}

// Release frees owner's address.
func (s *Slice) Release(owner string) { s.Addrs.release(owner) }

// Clone returns a deep copy.
func (s *Slice) Clone() *Slice { return &Slice{Prefix: s.Prefix, Addrs: s.Addrs.clone()} }

// Check reports an address outside the slice's container range or held twice.
func (s *Slice) Check() error { return s.Addrs.check("address of "+s.Prefix.String(), 2, s.size()-1) }

func (s *Slice) size() uint32 { return 1 << (32 - s.Prefix.Bits()) }
