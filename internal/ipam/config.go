package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrInvalid marks a bad setting or argument; the message names it.
var ErrInvalid = errors.New("invalid")

// ErrExhausted marks a pool, network or slice with no free block left.
var ErrExhausted = errors.New("exhausted")

// ErrTaken marks a chosen subnet that overlaps another network's, or a
// network that already has another subnet.
var ErrTaken = errors.New("taken")

// ErrNotFound marks a network the pool does not hold.
var ErrNotFound = errors.New("not found")

// maxBlockBits bounds every level (networks per pool, slices per network,
// addresses per slice) so that a search and a Pool's size stay small.
const maxBlockBits = 16

// maxOwnerLen bounds the IDs that own blocks (network, node, service, task).
const maxOwnerLen = 256

// Config is the cluster's address plan. It is stored with the pool and
// fixed for the cluster's life; the zero values of the fields added since
// the first version (GrowBits, VIPBits, SmallSliceBits, WideRegionBits)
// mean what that version did, so a pool stored then decodes to the same
// plan.
type Config struct {
	// Pool is the cluster address pool every network's subnet comes from.
	Pool netip.Prefix `json:"pool"`
	// NetworkBits is the prefix length a network's subnet starts at.
	NetworkBits int `json:"network_bits"`
	// SliceBits is the prefix length of one node's slice of a network: a
	// wide slice, when SmallSliceBits is set.
	SliceBits int `json:"slice_bits"`
	// GrowBits is the shortest prefix a network of the pool grows to when
	// its slices run out: it doubles in place, into the free block beside
	// it, keeping its base, its VIPs and every slice. 0: networks keep
	// NetworkBits (the first version's plan).
	GrowBits int `json:"grow_bits,omitempty"`
	// VIPBits is the prefix length of the VIP range at the base of every
	// network (at most half a chosen subnet). 0: SliceBits, slice 0.
	VIPBits int `json:"vip_bits,omitempty"`
	// SmallSliceBits, when set, is the prefix length of the slices of the
	// nodes that come once a network's wide region (its first
	// WideRegionBits prefix) is full of SliceBits slices: the first nodes
	// of a network get room for many containers, and a network of
	// thousands of nodes still fits the pool. 0: every slice is SliceBits.
	SmallSliceBits int `json:"small_slice_bits,omitempty"`
	WideRegionBits int `json:"wide_region_bits,omitempty"`
}

// DefaultPool is the cluster address pool when none is set. It overlaps
// none of Reserved and, being in 10/8 far from the ranges DHCP servers and
// clouds hand out by default, rarely a machine's own routes.
var DefaultPool = netip.MustParsePrefix("10.240.0.0/12")

// DefaultConfig is DefaultPool in networks that start as a /20 and grow
// to a /13, with a /24 of VIPs; the first 127 nodes of a network get a /24
// slice (253 containers), in its first /17, and the nodes after them a /27
// (29 containers): up to 256 networks, 15 nodes on a network before it
// first grows, 15,487 once it is a /13, 254 VIPs per network. A /13 is
// half the pool, so no network is ever routed as the whole pool (a
// machine's resolver may sit in it: 10.255.255.53 does here), and 10,000
// nodes on one network take 11/32 of the pool.
func DefaultConfig() Config {
	return Config{Pool: DefaultPool, NetworkBits: 20, SliceBits: 24, GrowBits: 13, VIPBits: 24, SmallSliceBits: 27, WideRegionBits: 17}
}

// V1Config is the first version's plan, which clusters bootstrapped then
// keep (it is stored with their pool): /18 networks that never grow, /24
// slices, slice 0 the VIPs: 64 networks of 63 nodes.
func V1Config() Config {
	return Config{Pool: DefaultPool, NetworkBits: 18, SliceBits: 24}
}

// WithSlice returns c with the slices of the nodes past a network's wide
// region of bits when bits is longer than c's wide slices (a /26 gives 61
// containers, a /27 29, a /28 13), or else every slice of bits and no small
// ones (a /24: 253 containers a node, but a /13 network holds only 2,047
// nodes), the network sizes kept.
func (c Config) WithSlice(bits int) Config {
	if c.SmallSliceBits != 0 && bits > c.SliceBits {
		c.SmallSliceBits = bits
		return c
	}
	c.SliceBits, c.SmallSliceBits, c.WideRegionBits = bits, 0, 0
	if c.VIPBits > bits {
		c.VIPBits = bits
	}
	return c
}

// PlanFor is the default plan on the cluster's settings (berth server
// --address-pool, --address-slice; zero values take the defaults). A pool
// smaller than the default's /12 keeps its proportions where it can:
// networks start, and stop growing, one bit below the pool at least, and
// the wide slices are smaller than a network (a /16 pool: 16 networks of
// up to a /17, 63 wide slices and 512 small). The result may still be
// invalid (a slice too large for the pool): Validate.
func PlanFor(pool netip.Prefix, sliceBits int) Config {
	c := DefaultConfig()
	if pool.IsValid() {
		c.Pool = pool
	}
	c.NetworkBits = max(c.NetworkBits, c.Pool.Bits()+1)
	c.GrowBits = max(c.GrowBits, c.Pool.Bits()+1)
	c.SliceBits = max(c.SliceBits, c.NetworkBits+1)
	c.WideRegionBits = min(max(c.WideRegionBits, c.GrowBits+1), c.NetworkBits)
	if c.SmallSliceBits <= c.SliceBits || c.WideRegionBits <= c.GrowBits { // no room to grow past the wide region
		c.SmallSliceBits, c.WideRegionBits = 0, 0
	}
	if sliceBits != 0 {
		c = c.WithSlice(sliceBits)
	}
	c.VIPBits = min(max(c.VIPBits, c.NetworkBits+1), c.SliceBits)
	return c
}

// Validate checks the plan: IPv4 (the overlay is VXLAN over IPv4), each
// level at least two blocks and at most 65536, a slice with room for the
// VTEP, the gateway, the broadcast and one container.
func (c Config) Validate() error {
	if !c.Pool.IsValid() || !c.Pool.Addr().Is4() {
		return fmt.Errorf("address pool %q is not an IPv4 prefix such as 10.240.0.0/12: %w", c.Pool, ErrInvalid)
	}
	if c.Pool != c.Pool.Masked() {
		return fmt.Errorf("address pool %s has host bits set (did you mean %s?): %w", c.Pool, c.Pool.Masked(), ErrInvalid)
	}
	if d := c.NetworkBits - c.Pool.Bits(); d < 1 || d > maxBlockBits {
		return fmt.Errorf("network size /%d must be 1 to %d bits longer than the pool's /%d: %w", c.NetworkBits, maxBlockBits, c.Pool.Bits(), ErrInvalid)
	}
	if d := c.SliceBits - c.NetworkBits; d < 1 || d > maxBlockBits {
		return fmt.Errorf("slice size /%d must be 1 to %d bits longer than the network's /%d: %w", c.SliceBits, maxBlockBits, c.NetworkBits, ErrInvalid)
	}
	if c.SliceBits > 29 {
		return fmt.Errorf("slice size /%d leaves no address for containers: use /29 or shorter: %w", c.SliceBits, ErrInvalid)
	}
	if c.SliceBits < 16 {
		return fmt.Errorf("slice size /%d is over 65536 addresses: use /16 or longer: %w", c.SliceBits, ErrInvalid)
	}
	if c.GrowBits != 0 && (c.GrowBits <= c.Pool.Bits() || c.GrowBits > c.NetworkBits || c.SliceBits-c.GrowBits > maxBlockBits) {
		return fmt.Errorf("network growth to /%d must stay shorter than the pool's /%d (a network is never the whole pool), no longer than the networks' /%d and at most %d bits above the /%d slices: %w",
			c.GrowBits, c.Pool.Bits(), c.NetworkBits, maxBlockBits, c.SliceBits, ErrInvalid)
	}
	if c.SmallSliceBits != 0 && (c.SmallSliceBits <= c.SliceBits || c.SmallSliceBits > 29 || c.SmallSliceBits-c.growBits() > maxBlockBits) {
		return fmt.Errorf("small slice size /%d must be longer than the /%d slices, /29 or shorter, and at most %d bits above the /%d networks grow to: %w",
			c.SmallSliceBits, c.SliceBits, maxBlockBits, c.growBits(), ErrInvalid)
	}
	if c.SmallSliceBits != 0 && (c.WideRegionBits <= c.growBits() || c.WideRegionBits > c.NetworkBits) {
		return fmt.Errorf("wide slice region /%d must be shorter than or as long as the /%d networks start at and longer than the /%d they grow to: %w",
			c.WideRegionBits, c.NetworkBits, c.growBits(), ErrInvalid)
	}
	if c.SmallSliceBits == 0 && c.WideRegionBits != 0 {
		return fmt.Errorf("wide slice region /%d without small slices: %w", c.WideRegionBits, ErrInvalid)
	}
	if c.VIPBits != 0 && (c.VIPBits <= c.NetworkBits || c.VIPBits > c.SliceBits) {
		return fmt.Errorf("VIP range /%d must be shorter than or as long as the /%d slices and fit twice in a /%d network: %w", c.VIPBits, c.SliceBits, c.NetworkBits, ErrInvalid)
	}
	return nil
}

// growBits is the shortest prefix a network of the pool may grow to.
func (c Config) growBits() int {
	if c.GrowBits == 0 {
		return c.NetworkBits
	}
	return c.GrowBits
}

// vipBits is the prefix length of the VIP range of a network of subnet s:
// VIPBits, but at most half of s, and never shorter than a slice.
func (c Config) vipBits(s netip.Prefix) int {
	v := c.VIPBits
	if v == 0 {
		v = c.SliceBits
	}
	return min(c.SliceBits, max(v, s.Bits()+1))
}

// Limits are the counts a Config allows.
type Limits struct {
	Networks           int // networks in the pool (fewer as networks grow)
	NodesPerNetwork    int // slices of a network that go to nodes, at its start size
	MaxNodesPerNetwork int // the same once it has grown to GrowBits (if the blocks beside it are free)
	WideNodes          int // nodes of a network with a SliceBits slice, the first ones
	VIPsPerNetwork     int // services with a VIP on one network
	AddrsPerSlice      int // container addresses in one node's (wide) slice
	AddrsPerSmallSlice int // the same in a small slice; 0 without
}

// Limits returns the counts c allows; c must be valid.
func (c Config) Limits() Limits {
	start := netip.PrefixFrom(c.Pool.Addr(), c.NetworkBits)
	vips := 1 << (c.SliceBits - c.vipBits(start)) // slices the VIPs take
	l := Limits{
		Networks:           1 << (c.NetworkBits - c.Pool.Bits()),
		NodesPerNetwork:    1<<(c.SliceBits-c.NetworkBits) - vips,
		MaxNodesPerNetwork: 1<<(c.SliceBits-c.growBits()) - vips,
		VIPsPerNetwork:     1<<(32-c.vipBits(start)) - 2,
		AddrsPerSlice:      1<<(32-c.SliceBits) - 3, // as Slice.Take: not the VTEP, gateway or broadcast
	}
	l.WideNodes = l.MaxNodesPerNetwork
	if c.SmallSliceBits != 0 {
		l.WideNodes = 1<<(c.SliceBits-c.WideRegionBits) - vips
		l.MaxNodesPerNetwork = l.WideNodes + 1<<(c.SmallSliceBits-c.growBits()) - 1<<(c.SmallSliceBits-c.WideRegionBits)
		l.AddrsPerSmallSlice = 1<<(32-c.SmallSliceBits) - 3
	}
	return l
}

// Reserved are the prefixes a pool must never overlap whatever the machine:
// Docker's default address pools (the engine hands its networks these)
// and the local machine driver's hosts (10.213.0.0/16).
func Reserved() []Taken {
	var ts []Taken
	for _, s := range []string{"172.17.0.0/16", "172.18.0.0/15", "172.20.0.0/14", "172.24.0.0/13", "192.168.0.0/16"} {
		ts = append(ts, Taken{netip.MustParsePrefix(s), "a Docker default address pool"})
	}
	ts = append(ts, Taken{netip.MustParsePrefix("10.213.0.0/16"), "the local machine driver's hosts"})
	return ts
}

// Taken is a prefix in use on a machine and what uses it, for messages.
type Taken struct {
	Prefix netip.Prefix
	What   string
}

// CheckPool reports the first of Reserved and taken (the machine's routes,
// resolvers, its engine's configured pools, as the caller found them) that
// overlaps the pool. A default route (a /0) overlaps everything and is
// skipped.
func CheckPool(pool netip.Prefix, taken []Taken) error {
	for _, t := range append(Reserved(), taken...) {
		if t.Prefix.Bits() > 0 && t.Prefix.Overlaps(pool) {
			return fmt.Errorf("address pool %s overlaps %s (%s): choose another pool: %w", pool, t.Prefix, t.What, ErrInvalid)
		}
	}
	return nil
}
