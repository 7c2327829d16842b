package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

// FuzzPool replays a byte string as a sequence of allocations and releases
// on three small plans, one of the first version's (4 networks, 3 node
// slices and 126 VIPs each), one whose networks grow (8 networks of 2
// node slices that grow in place to 14, VIP ranges of 2 slices) and the
// same with small slices past a wide region (6 wide, then 32 small), and
// checks,
// after every step: the invariants (Check); that no two owners hold
// overlapping blocks and each block lies where it must; that an owner
// asking again gets the same answer; that exhaustion is reported only when
// every block is taken; and that a second pool, decoded from JSON before
// every step as a manager restoring a snapshot would be, answers the same
// and ends equal to it.
//
//	go test -run '^$' -fuzz '^FuzzPool$' -fuzztime 1m ./internal/ipam
func FuzzPool(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{0x00, 0x10, 0x20, 0x30, 0x11, 0x41, 0x21, 0x12, 0x50, 0x60, 0x70})
	// net0, four nodes into its three slices, release one, two more: wraps.
	f.Add([]byte{0x00, 0x20, 0x24, 0x28, 0xA4, 0x2c, 0x30})
	f.Add([]byte("allocate, release, allocate again, and wrap around the pool"))
	// net0 filling its slices, growing, net1 beside it, net0 stuck.
	f.Add([]byte{0x00, 0x20, 0x24, 0x28, 0x2c, 0x30, 0x34, 0x38, 0x3c, 0x01, 0x21, 0x25})
	f.Fuzz(func(t *testing.T, prog []byte) {
		for _, cfg := range []Config{
			{Pool: netip.MustParsePrefix("10.240.0.0/21"), NetworkBits: 23, SliceBits: 25},
			{Pool: netip.MustParsePrefix("10.240.0.0/21"), NetworkBits: 24, SliceBits: 26, GrowBits: 22, VIPBits: 25},
			{Pool: netip.MustParsePrefix("10.240.0.0/21"), NetworkBits: 24, SliceBits: 26, GrowBits: 22, VIPBits: 25, SmallSliceBits: 28, WideRegionBits: 23},
		} {
			fuzzPool(t, cfg, prog)
		}
	})
}

func fuzzPool(t *testing.T, cfg Config, prog []byte) {
	{
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		replica := p.Clone()
		for i, b := range prog {
			o := decodeOp(b)
			got := o.run(p)
			replica = roundTrip(t, replica)
			if again := o.run(replica); again != got {
				t.Fatalf("step %d %v: replica answered %q, leader %q", i, o, again, got)
			}
			if err := checkAll(p, o, got); err != nil {
				t.Fatalf("step %d %v = %q: %v", i, o, got, err)
			}
		}
		// Same commands, same state: byte for byte, as a snapshot.
		a, _ := json.Marshal(p)
		b, _ := json.Marshal(replica)
		if string(a) != string(b) {
			t.Fatalf("leader and replica differ:\n%s\n%s", a, b)
		}
	}
}

// decodeOp maps a byte to an operation: the high 3 bits choose it, the low
// bits the network (4) and the node or service (up to 8, more than fit).
func decodeOp(b byte) op {
	kinds := []string{"net", "node", "vip", "node", "rmnet", "rmnode", "rmvip", "rmeverywhere"}
	o := op{do: kinds[b>>5], a: fmt.Sprintf("net%d", b&3), b: fmt.Sprintf("o%d", (b>>2)&7)}
	if o.do == "rmeverywhere" {
		o.a = o.b
	}
	return o
}

func roundTrip(t *testing.T, p *Pool) *Pool {
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q Pool
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	return &q
}

func checkAll(p *Pool, o op, got string) error {
	if err := p.Check(); err != nil {
		return err
	}
	if again := o.run(p); o.do == "net" || o.do == "node" || o.do == "vip" {
		if again != got {
			return fmt.Errorf("asked again: %q", again)
		}
	}
	if got == "exhausted" && !full(p, o) {
		return errors.New("exhausted with a free block")
	}
	return disjoint(p)
}

// full says whether the level o allocates in has every block taken.
func full(p *Pool, o op) bool {
	l := p.Config.Limits()
	switch o.do {
	case "net":
		for i := range uint32(l.Networks) {
			if p.overlapping(block(p.Config.Pool, p.Config.NetworkBits, i)) == "" {
				return false
			}
		}
		return true
	case "node":
		s, _ := p.Subnet(o.a)
		r, n := p.ranges(s), p.Networks[o.a]
		free := int(r.wideHi-r.wideLo+r.smallHi-r.smallLo) - len(n.Slices.Owners) - len(n.Small.Owners)
		return free == 0 && !p.Clone().grow(o.a, s)
	case "vip":
		s, _ := p.Subnet(o.a)
		return len(p.Networks[o.a].VIPs.Owners) == int(vipCount(p.vipRange(s)))
	}
	return false
}

// disjoint checks, by addresses alone, that every subnet is in the pool and
// apart from the others, every slice in its subnet and apart from the
// other slices and from the VIPs' slice, every VIP in the VIPs' slice.
func disjoint(p *Pool) error {
	var subnets []netip.Prefix
	for _, id := range p.NetworkIDs() {
		s, _ := p.Subnet(id)
		if !p.Config.Pool.Contains(s.Addr()) || s.Bits() > p.Config.NetworkBits || s.Bits() < p.Config.growBits() || s != s.Masked() {
			return fmt.Errorf("subnet %s of %s is not a /%d to /%d of the pool", s, id, p.Config.growBits(), p.Config.NetworkBits)
		}
		for _, o := range subnets {
			if o.Overlaps(s) {
				return fmt.Errorf("subnets %s and %s overlap", o, s)
			}
		}
		subnets = append(subnets, s)
		vips := p.vipRange(s)
		taken := []netip.Prefix{vips}
		for node, sl := range p.Slices(id) {
			if !s.Contains(sl.Addr()) {
				return fmt.Errorf("slice %s of %s is outside %s", sl, node, s)
			}
			for _, o := range taken {
				if o.Overlaps(sl) {
					return fmt.Errorf("slice %s of %s overlaps %s", sl, node, o)
				}
			}
			taken = append(taken, sl)
		}
		seen := map[netip.Addr]bool{}
		for svc := range p.Networks[id].VIPs.Owners {
			v, _ := p.VIP(id, svc)
			if !vips.Contains(v) || v == vips.Addr() || seen[v] {
				return fmt.Errorf("VIP %s of %s is outside %s or taken twice", v, svc, vips)
			}
			seen[v] = true
		}
	}
	return nil
}
