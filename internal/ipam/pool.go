package ipam

import (
	"fmt"
	"maps"
	"net/netip"
	"sort"
)

// Pool is the cluster's allocations, the value the store keeps. Its fields
// are exported for encoding only: change it through its methods.
type Pool struct {
	Config Config `json:"config"`
	// Nets maps a network ID to its subnet's index in Config.Pool.
	Nets blocks `json:"nets"`
	// Fixed maps a network ID to the subnet its user chose (Compose's
	// ipam, `berth network create --subnet`), in the pool or outside it;
	// such a network has no index in Nets, and no block of Nets overlaps it.
	Fixed map[string]netip.Prefix `json:"fixed,omitempty"`
	// Grown maps a network of Nets that has grown (Config.GrowBits) to
	// its prefix length now; its base stays the block Nets gives it.
	Grown map[string]int `json:"grown,omitempty"`
	// Networks has an entry for every ID in Nets and Fixed.
	Networks map[string]*Network `json:"networks,omitempty"`
}

// Network is one network's slices and VIPs.
type Network struct {
	// Slices maps a node ID to its slice's index in the subnet, from the
	// first slice past the VIP range (slice 0 in the first version).
	Slices blocks `json:"slices"`
	// VIPs maps a service ID to its VIP's offset in the VIP range, from 1.
	VIPs blocks `json:"vips"`
	// Small maps a node ID to its small slice's index (of
	// Config.SmallSliceBits) in the subnet, past the wide region: the
	// slices of nodes that came once the wide ones were all taken.
	Small blocks `json:"small,omitzero"`
}

// New returns an empty pool with the plan cfg.
func New(cfg Config) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Pool{Config: cfg}, nil
}

// Clone returns a deep copy, for a store whose objects are immutable.
func (p *Pool) Clone() *Pool {
	c := &Pool{Config: p.Config, Nets: p.Nets.clone(), Fixed: maps.Clone(p.Fixed), Grown: maps.Clone(p.Grown)}
	if p.Networks != nil {
		c.Networks = make(map[string]*Network, len(p.Networks))
		for id, n := range p.Networks {
			c.Networks[id] = &Network{Slices: n.Slices.clone(), VIPs: n.VIPs.clone(), Small: n.Small.clone()}
		}
	}
	return c
}

// Equal reports whether p and o hold the same allocations (an empty map
// and none are the same, as in their encoding). The store asks it after
// every change it runs on a clone: comparing the encodings of two pools
// of 300 networks was a seventh of a manager's CPU through 300 deploys.
func (p *Pool) Equal(o *Pool) bool {
	if p == nil || o == nil {
		return p == o
	}
	if p.Config != o.Config || !p.Nets.equal(o.Nets) || !maps.Equal(p.Fixed, o.Fixed) || !maps.Equal(p.Grown, o.Grown) ||
		len(p.Networks) != len(o.Networks) {
		return false
	}
	for id, n := range p.Networks {
		m, ok := o.Networks[id]
		if !ok || (n == nil) != (m == nil) {
			return false
		}
		if n != nil && (!n.Slices.equal(m.Slices) || !n.VIPs.equal(m.VIPs) || !n.Small.equal(m.Small)) {
			return false
		}
	}
	return true
}

// AddNetwork returns the network's subnet, allocating one if it has none.
func (p *Pool) AddNetwork(id string) (netip.Prefix, error) {
	if err := checkOwner("network", id); err != nil {
		return netip.Prefix{}, err
	}
	if s, ok := p.Fixed[id]; ok {
		return s, nil
	}
	c := p.Config
	free := func(i uint32) bool { return p.overlapping(block(c.Pool, c.NetworkBits, i)) != "" }
	var i uint32
	var ok bool
	if c.GrowBits == 0 {
		i, ok = p.Nets.take(id, 0, count(c.Pool, c.NetworkBits), free)
	} else {
		i, ok = p.Nets.takeSpread(id, count(c.Pool, c.NetworkBits), free)
	}
	if !ok {
		return netip.Prefix{}, fmt.Errorf("the address pool %s has no free /%d for network %s: remove unused networks or set a larger pool: %w", c.Pool, c.NetworkBits, id, ErrExhausted)
	}
	if p.Networks == nil {
		p.Networks = map[string]*Network{}
	}
	if p.Networks[id] == nil {
		p.Networks[id] = &Network{}
	}
	return block(c.Pool, c.NetworkBits, i), nil
}

// AddFixedNetwork gives the network the subnet its user chose, which must
// overlap no other network's, hold at least two slices (the first is the
// VIPs') and at most 65536. It is idempotent; a network that already has
// another subnet keeps it and the call fails.
func (p *Pool) AddFixedNetwork(id string, subnet netip.Prefix) (netip.Prefix, error) {
	if err := checkOwner("network", id); err != nil {
		return netip.Prefix{}, err
	}
	if err := p.checkFixed(subnet); err != nil {
		return netip.Prefix{}, fmt.Errorf("subnet of network %s: %w", id, err)
	}
	if old, ok := p.Subnet(id); ok {
		if old == subnet {
			return old, nil
		}
		return netip.Prefix{}, fmt.Errorf("network %s already has subnet %s, not %s: a network's subnet cannot change while it exists; remove it first: %w", id, old, subnet, ErrTaken)
	}
	if other := p.overlapping(subnet); other != "" {
		// A grown network holds its whole prefix, slices or not.
		s, _ := p.Subnet(other)
		return netip.Prefix{}, fmt.Errorf("subnet %s of network %s overlaps network %s (%s): choose another subnet: %w", subnet, id, other, s, ErrTaken)
	}
	if p.Fixed == nil {
		p.Fixed = map[string]netip.Prefix{}
	}
	p.Fixed[id] = subnet
	if p.Networks == nil {
		p.Networks = map[string]*Network{}
	}
	p.Networks[id] = &Network{}
	return subnet, nil
}

// checkFixed checks a chosen subnet against the slice size.
func (p *Pool) checkFixed(s netip.Prefix) error {
	if !s.IsValid() || !s.Addr().Is4() {
		return fmt.Errorf("%q is not an IPv4 prefix such as 10.100.0.0/16 (the overlay is IPv4): %w", s, ErrInvalid)
	}
	if s != s.Masked() {
		return fmt.Errorf("%s has host bits set (did you mean %s?): %w", s, s.Masked(), ErrInvalid)
	}
	if d := p.Config.SliceBits - s.Bits(); d < 1 || d > maxBlockBits {
		return fmt.Errorf("%s must be 1 to %d bits shorter than the cluster's /%d node slices (a /%d to a /%d): %w",
			s, maxBlockBits, p.Config.SliceBits, max(p.Config.SliceBits-maxBlockBits, 0), p.Config.SliceBits-1, ErrInvalid)
	}
	return nil
}

// overlapping names a network whose subnet overlaps s, or "".
func (p *Pool) overlapping(s netip.Prefix) string {
	for _, id := range p.NetworkIDs() {
		if sub, _ := p.Subnet(id); sub.Overlaps(s) {
			return id
		}
	}
	return ""
}

// grow doubles network id's subnet in place when the config lets it grow
// and the block beside it is free: only the lower half of the doubled
// prefix may grow (its base, and so its VIPs' and slices' addresses, stay
// where they are). It reports whether it grew.
func (p *Pool) grow(id string, subnet netip.Prefix) bool {
	if _, fixed := p.Fixed[id]; fixed || subnet.Bits() <= p.Config.growBits() {
		return false
	}
	bigger := netip.PrefixFrom(subnet.Addr(), subnet.Bits()-1).Masked()
	if bigger.Addr() != subnet.Addr() {
		return false
	}
	for _, other := range p.NetworkIDs() {
		if s, _ := p.Subnet(other); other != id && s.Overlaps(bigger) {
			return false
		}
	}
	if p.Grown == nil {
		p.Grown = map[string]int{}
	}
	p.Grown[id] = bigger.Bits()
	return true
}

// RemoveNetwork frees the network's subnet with its slices and VIPs.
func (p *Pool) RemoveNetwork(id string) {
	p.Nets.release(id)
	delete(p.Fixed, id)
	if len(p.Fixed) == 0 {
		p.Fixed = nil
	}
	delete(p.Grown, id)
	if len(p.Grown) == 0 {
		p.Grown = nil
	}
	delete(p.Networks, id)
}

// Subnet returns the network's subnet, if it has one.
func (p *Pool) Subnet(network string) (netip.Prefix, bool) {
	if s, ok := p.Fixed[network]; ok {
		return s, true
	}
	i, ok := p.Nets.Owners[network]
	if !ok {
		return netip.Prefix{}, false
	}
	s := block(p.Config.Pool, p.Config.NetworkBits, i)
	if bits, ok := p.Grown[network]; ok {
		s = netip.PrefixFrom(s.Addr(), bits)
	}
	return s, true
}

// vipRange is the VIPs' part of a network of subnet s, at its base.
func (p *Pool) vipRange(s netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(s.Addr(), p.Config.vipBits(s))
}

// sliceRanges are the indexes of the node slices of a network of subnet s:
// wide ones (Config.SliceBits) from the one past the VIP range to the end
// of the wide region, and small ones (Config.SmallSliceBits) from there to
// the end of s (none while s is no larger than the region).
type sliceRanges struct{ wideLo, wideHi, smallLo, smallHi uint32 }

func (p *Pool) ranges(s netip.Prefix) sliceRanges {
	c := p.Config
	r := sliceRanges{wideLo: 1 << (c.SliceBits - c.vipBits(s)), wideHi: count(s, c.SliceBits)}
	if c.SmallSliceBits == 0 || s.Bits() >= c.WideRegionBits {
		return r
	}
	region := netip.PrefixFrom(s.Addr(), c.WideRegionBits)
	r.wideHi = count(region, c.SliceBits)
	r.smallLo, r.smallHi = count(region, c.SmallSliceBits), count(s, c.SmallSliceBits)
	return r
}

// AddNode returns the node's slice of the network, allocating one if it
// has none. A network of the pool whose slices are all taken grows first,
// if it may (Config.GrowBits) and the block beside it is free.
func (p *Pool) AddNode(network, node string) (netip.Prefix, error) {
	n, subnet, err := p.network(network)
	if err != nil {
		return netip.Prefix{}, err
	}
	if err := checkOwner("node", node); err != nil {
		return netip.Prefix{}, err
	}
	if s, ok := p.Slice(network, node); ok {
		return s, nil
	}
	for {
		r := p.ranges(subnet)
		// A full level is skipped without a search: once the wide region
		// is full, every later node would walk it to no avail.
		if uint32(len(n.Slices.Owners)) < r.wideHi-r.wideLo {
			if i, ok := n.Slices.take(node, r.wideLo, r.wideHi, nil); ok {
				return block(subnet, p.Config.SliceBits, i), nil
			}
		}
		if r.smallHi > r.smallLo {
			if i, ok := n.Small.take(node, r.smallLo, r.smallHi, nil); ok {
				return block(subnet, p.Config.SmallSliceBits, i), nil
			}
		}
		if !p.grow(network, subnet) {
			return netip.Prefix{}, p.exhausted(network, node, subnet, len(n.Slices.Owners)+len(n.Small.Owners))
		}
		subnet, _ = p.Subnet(network)
	}
}

// exhausted says why network has no slice for node, and what to change.
func (p *Pool) exhausted(network, node string, subnet netip.Prefix, taken int) error {
	c := p.Config
	what := fmt.Sprintf("network %s (%s) has no free slice for node %s: its %d node slices are taken", network, subnet, node, taken)
	switch _, fixed := p.Fixed[network]; {
	case fixed:
		return fmt.Errorf("%s; give the network a larger subnet (Compose ipam, berth network create --subnet): %w", what, ErrExhausted)
	case subnet.Bits() > c.growBits():
		return fmt.Errorf("%s and the address pool %s has no free block beside it to grow into; remove unused networks, or bootstrap the cluster with a larger --address-pool or a smaller --address-slice: %w", what, c.Pool, ErrExhausted)
	}
	return fmt.Errorf("%s, the most a network of the pool %s may hold; bootstrap the cluster with a larger --address-pool or a smaller --address-slice: %w", what, c.Pool, ErrExhausted)
}

// RemoveNode frees the node's slice of the network.
func (p *Pool) RemoveNode(network, node string) {
	if n := p.Networks[network]; n != nil {
		n.Slices.release(node)
		n.Small.release(node)
	}
}

// RemoveNodeEverywhere frees the node's slices of every network, for a
// node that leaves the cluster.
func (p *Pool) RemoveNodeEverywhere(node string) {
	for _, n := range p.Networks {
		n.Slices.release(node)
		n.Small.release(node)
	}
}

// Slice returns the node's slice of the network, if it has one.
func (p *Pool) Slice(network, node string) (netip.Prefix, bool) {
	n := p.Networks[network]
	if n == nil {
		return netip.Prefix{}, false
	}
	subnet, _ := p.Subnet(network)
	if i, ok := n.Slices.Owners[node]; ok {
		return block(subnet, p.Config.SliceBits, i), true
	}
	if i, ok := n.Small.Owners[node]; ok {
		return block(subnet, p.Config.SmallSliceBits, i), true
	}
	return netip.Prefix{}, false
}

// Slices returns the network's slices by node ID.
func (p *Pool) Slices(network string) map[string]netip.Prefix {
	subnet, ok := p.Subnet(network)
	if !ok {
		return nil
	}
	out := map[string]netip.Prefix{}
	n := p.Networks[network]
	for node, i := range n.Slices.Owners {
		out[node] = block(subnet, p.Config.SliceBits, i)
	}
	for node, i := range n.Small.Owners {
		out[node] = block(subnet, p.Config.SmallSliceBits, i)
	}
	return out
}

// AddVIP returns the service's VIP on the network, allocating one if it
// has none.
func (p *Pool) AddVIP(network, service string) (netip.Addr, error) {
	n, subnet, err := p.network(network)
	if err != nil {
		return netip.Addr{}, err
	}
	if err := checkOwner("service", service); err != nil {
		return netip.Addr{}, err
	}
	vips := p.vipRange(subnet)
	i, ok := n.VIPs.take(service, 1, vipCount(vips)+1, nil)
	if !ok {
		return netip.Addr{}, fmt.Errorf("network %s has no free VIP for service %s: its %d are taken; put some services on another network: %w", network, service, vipCount(vips), ErrExhausted)
	}
	return nth(vips, i), nil
}

// RemoveVIP frees the service's VIP on the network.
func (p *Pool) RemoveVIP(network, service string) {
	if n := p.Networks[network]; n != nil {
		n.VIPs.release(service)
	}
}

// VIP returns the service's VIP on the network, if it has one.
func (p *Pool) VIP(network, service string) (netip.Addr, bool) {
	subnet, ok := p.Subnet(network)
	if !ok {
		return netip.Addr{}, false
	}
	i, ok := p.Networks[network].VIPs.Owners[service]
	if !ok {
		return netip.Addr{}, false
	}
	return nth(p.vipRange(subnet), i), true
}

// vipCount is the number of VIPs in a VIP range: all but its first and
// last addresses.
func vipCount(vips netip.Prefix) uint32 { return 1<<(32-vips.Bits()) - 2 }

// NetworkIDs returns the IDs of the networks with a subnet, sorted.
func (p *Pool) NetworkIDs() []string {
	ids := make([]string, 0, len(p.Nets.Owners)+len(p.Fixed))
	for id := range p.Nets.Owners {
		ids = append(ids, id)
	}
	for id := range p.Fixed {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (p *Pool) network(id string) (*Network, netip.Prefix, error) {
	subnet, ok := p.Subnet(id)
	if !ok || p.Networks[id] == nil {
		return nil, netip.Prefix{}, fmt.Errorf("network %q has no subnet: create the network first: %w", id, ErrNotFound)
	}
	return p.Networks[id], subnet, nil
}

// Check reports the first broken invariant: a bad config, a block outside
// its level or held twice, a network in one map and not the other. A pool
// only changed through its methods always passes; the store may call it on
// a decoded snapshot.
func (p *Pool) Check() error {
	c := p.Config
	if err := c.Validate(); err != nil {
		return err
	}
	if err := p.Nets.check("subnet", 0, count(c.Pool, c.NetworkBits)); err != nil {
		return err
	}
	if len(p.Networks) != len(p.Nets.Owners)+len(p.Fixed) {
		return fmt.Errorf("%d networks have subnets but %d have slices", len(p.Nets.Owners)+len(p.Fixed), len(p.Networks))
	}
	for id, bits := range p.Grown {
		i, ok := p.Nets.Owners[id]
		if !ok || bits < c.growBits() || bits >= c.NetworkBits {
			return fmt.Errorf("network %q grown to /%d is not a network of the pool that may grow so far (/%d to /%d)", id, bits, c.growBits(), c.NetworkBits-1)
		}
		if s := block(c.Pool, c.NetworkBits, i); netip.PrefixFrom(s.Addr(), bits).Masked().Addr() != s.Addr() {
			return fmt.Errorf("network %q grown to /%d from %s does not keep its base", id, bits, s)
		}
	}
	for id, s := range p.Fixed {
		if _, dup := p.Nets.Owners[id]; dup {
			return fmt.Errorf("network %q has both a chosen subnet and one from the pool", id)
		}
		if err := p.checkFixed(s); err != nil {
			return fmt.Errorf("chosen subnet of network %q: %w", id, err)
		}
	}
	ids := p.NetworkIDs()
	for i, a := range ids {
		sa, _ := p.Subnet(a)
		for _, b := range ids[i+1:] {
			if sb, _ := p.Subnet(b); sa.Overlaps(sb) {
				return fmt.Errorf("networks %q (%s) and %q (%s) overlap", a, sa, b, sb)
			}
		}
	}
	for id, n := range p.Networks {
		subnet, ok := p.Subnet(id)
		if !ok || n == nil {
			return fmt.Errorf("network %q has slices but no subnet", id)
		}
		r := p.ranges(subnet)
		if err := n.Slices.check("slice of "+id, r.wideLo, r.wideHi); err != nil {
			return err
		}
		if err := n.Small.check("small slice of "+id, r.smallLo, r.smallHi); err != nil {
			return err
		}
		for node := range n.Small.Owners {
			if _, dup := n.Slices.Owners[node]; dup {
				return fmt.Errorf("node %q has two slices of %s", node, id)
			}
		}
		if err := n.VIPs.check("VIP of "+id, 1, vipCount(p.vipRange(subnet))+1); err != nil {
			return err
		}
	}
	return nil
}

// SliceChanges adds to nodes every node whose slice of some network is not
// the same in before and after (given, taken, moved, or gone with its
// network), so the store can wake only the agents whose own addresses
// changed, not every agent for each node's first slice. Either pool may be
// nil (none stored yet). It compares slices only, not VIPs: a node's work
// names its own slices and nothing else of the pool.
func SliceChanges(before, after *Pool, nodes map[string]bool) {
	ids := map[string]bool{}
	for _, p := range []*Pool{before, after} {
		if p != nil {
			for id := range p.Networks {
				ids[id] = true
			}
		}
	}
	for id := range ids {
		a, b := before.layout(id), after.layout(id)
		if a.subnet != b.subnet || a.wideBits != b.wideBits || a.smallBits != b.smallBits {
			// Every slice the network had or has moved with it.
			for _, l := range []layout{a, b} {
				for node := range l.wide {
					nodes[node] = true
				}
				for node := range l.small {
					nodes[node] = true
				}
			}
			continue
		}
		ownersDiffer(a.wide, b.wide, nodes)
		ownersDiffer(a.small, b.small, nodes)
	}
}

// layout is what a network's slices are computed from.
type layout struct {
	subnet              netip.Prefix
	wideBits, smallBits int
	wide, small         map[string]uint32
}

func (p *Pool) layout(network string) layout {
	if p == nil || p.Networks[network] == nil {
		return layout{}
	}
	subnet, _ := p.Subnet(network)
	n := p.Networks[network]
	return layout{subnet: subnet, wideBits: p.Config.SliceBits, smallBits: p.Config.SmallSliceBits, wide: n.Slices.Owners, small: n.Small.Owners}
}

// ownersDiffer adds to nodes every owner that a and b do not give the same
// index.
func ownersDiffer(a, b map[string]uint32, nodes map[string]bool) {
	for node, i := range a {
		if j, ok := b[node]; !ok || i != j {
			nodes[node] = true
		}
	}
	for node := range b {
		if _, ok := a[node]; !ok {
			nodes[node] = true
		}
	}
}
