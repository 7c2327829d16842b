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

// Config is the cluster's address plan.
type Config struct {
	// Pool is the cluster address pool every network's subnet comes from.
	Pool netip.Prefix `json:"pool"`
	// NetworkBits is the prefix length of one network's subnet.
	NetworkBits int `json:"network_bits"`
	// SliceBits is the prefix length of one node's slice of a network.
	SliceBits int `json:"slice_bits"`
}

// DefaultPool is the cluster address pool when none is set. It overlaps
// none of Reserved and, being in 10/8 far from the ranges DHCP servers and
// clouds hand out by default, rarely a machine's own routes.
var DefaultPool = netip.MustParsePrefix("10.240.0.0/12")

// DefaultConfig is DefaultPool in /18 networks of /24 slices: 64 networks,
// 63 nodes and 254 VIPs per network, 253 containers per node and network.
func DefaultConfig() Config {
	return Config{Pool: DefaultPool, NetworkBits: 18, SliceBits: 24}
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
	return nil
}

// Limits are the counts a Config allows.
type Limits struct {
	Networks        int // networks in the pool
	NodesPerNetwork int // slices of a network that go to nodes
	VIPsPerNetwork  int // services with a VIP on one network
	AddrsPerSlice   int // container addresses in one node's slice
}

// Limits returns the counts c allows; c must be valid.
func (c Config) Limits() Limits {
	hosts := 1<<(32-c.SliceBits) - 2
	return Limits{
		Networks:        1 << (c.NetworkBits - c.Pool.Bits()),
		NodesPerNetwork: 1<<(c.SliceBits-c.NetworkBits) - 1,
		VIPsPerNetwork:  hosts,
		AddrsPerSlice:   hosts - 2,
	}
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
