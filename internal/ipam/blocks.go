package ipam

import (
	"fmt"
	"maps"
	"math/bits"
	"net/netip"
)

// blocks hands out the indexes lo..hi-1 of one level to owners, next-fit.
// Only Owners is the truth; which indexes are used is derived from it on
// each take, so no two views can disagree, and the result never depends on
// the order a map is walked in.
type blocks struct {
	Owners map[string]uint32 `json:"owners,omitempty"`
	// Next is where the next search starts: one past the last allocation
	// (in takeSpread's order for a level it allocates).
	Next uint32 `json:"next,omitempty"`
	// used is the set of Owners' indexes, derived from Owners when first
	// needed and kept by take and release, so a take costs no walk of
	// every owner (10,000 slices of a network). Never encoded; a clone
	// derives its own.
	used map[uint32]bool
}

// take returns owner's index, allocating the first free one at or after
// Next (wrapping) that skip (when given) does not refuse, if it has none;
// false when all are taken.
func (b *blocks) take(owner string, lo, hi uint32, skip func(uint32) bool) (uint32, bool) {
	if i, ok := b.Owners[owner]; ok {
		return i, true
	}
	used := b.usedSet()
	n, start := hi-lo, b.Next
	if start < lo || start >= hi {
		start = lo
	}
	for k := range n {
		i := lo + (start-lo+k)%n
		if used[i] || (skip != nil && skip(i)) {
			continue
		}
		b.own(owner, i)
		b.Next = i + 1
		return i, true
	}
	return 0, false
}

// takeSpread is take over 0..n-1 (n a power of two) in bit-reversed
// order: 0, n/2, n/4, 3n/4, ... Each block taken so lies as far from the
// others as the free ones allow, which leaves the most room beside it for
// a network to grow into. Next counts positions in that order.
func (b *blocks) takeSpread(owner string, n uint32, skip func(uint32) bool) (uint32, bool) {
	if i, ok := b.Owners[owner]; ok {
		return i, true
	}
	used := b.usedSet()
	width := bits.TrailingZeros32(n)
	start := b.Next % n
	for k := range n {
		pos := (start + k) % n
		i := bits.Reverse32(pos) >> (32 - width)
		if width == 0 {
			i = 0
		}
		if used[i] || (skip != nil && skip(i)) {
			continue
		}
		b.own(owner, i)
		b.Next = pos + 1
		return i, true
	}
	return 0, false
}

// usedSet returns the set of taken indexes, deriving it if need be.
func (b *blocks) usedSet() map[uint32]bool {
	if b.used == nil {
		b.used = make(map[uint32]bool, len(b.Owners))
		for _, i := range b.Owners {
			b.used[i] = true
		}
	}
	return b.used
}

func (b *blocks) own(owner string, i uint32) {
	if b.Owners == nil {
		b.Owners = map[string]uint32{}
	}
	b.Owners[owner] = i
	b.usedSet()[i] = true
}

// release frees owner's index. An emptied map becomes nil, as decoding
// an omitted one gives, so a pool equals its own JSON round trip.
func (b *blocks) release(owner string) {
	if i, ok := b.Owners[owner]; ok && b.used != nil {
		delete(b.used, i)
	}
	delete(b.Owners, owner)
	if len(b.Owners) == 0 {
		b.Owners = nil
	}
}

// IsZero tells encoding/json's omitzero that an empty level (the derived
// set aside) is nothing to write.
func (b blocks) IsZero() bool { return len(b.Owners) == 0 && b.Next == 0 }

func (b blocks) clone() blocks {
	return blocks{Owners: maps.Clone(b.Owners), Next: b.Next}
}

// equal reports whether b and o hold the same owners and search start.
func (b blocks) equal(o blocks) bool {
	return b.Next == o.Next && maps.Equal(b.Owners, o.Owners)
}

// check reports an index outside lo..hi-1 or held by two owners.
func (b blocks) check(what string, lo, hi uint32) error {
	seen := make(map[uint32]string, len(b.Owners))
	for o, i := range b.Owners {
		if i < lo || i >= hi {
			return fmt.Errorf("%s %d of %q is outside %d..%d", what, i, o, lo, hi-1)
		}
		if p, dup := seen[i]; dup {
			return fmt.Errorf("%s %d is held by both %q and %q", what, i, p, o)
		}
		seen[i] = o
	}
	return nil
}

// block is the index-th block of size bits inside p.
func block(p netip.Prefix, bits int, index uint32) netip.Prefix {
	return netip.PrefixFrom(nth(p, index<<(32-bits)), bits)
}

// nth is the address offset from p's first address.
func nth(p netip.Prefix, offset uint32) netip.Addr {
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += offset
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// count is the number of blocks of size bits in p.
func count(p netip.Prefix, bits int) uint32 { return 1 << (bits - p.Bits()) }

// VTEP is the address of a node's VXLAN device in its slice: the first.
// Peers route the slice via it; it is never a container's.
func VTEP(slice netip.Prefix) netip.Addr { return slice.Masked().Addr() }

// Gateway is the slice's gateway, the node's bridge: the second address.
func Gateway(slice netip.Prefix) netip.Addr { return nth(slice.Masked(), 1) }

func checkOwner(what, id string) error {
	if id == "" || len(id) > maxOwnerLen {
		return fmt.Errorf("%s ID %q must be 1 to %d characters: %w", what, id, maxOwnerLen, ErrInvalid)
	}
	return nil
}
