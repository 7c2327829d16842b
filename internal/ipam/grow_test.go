package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestManyNodesOnOneNetwork puts nodes on network "big" of the default plan
// until it is full, with other networks made first, and checks that it
// holds as many as its plan promises, that no two slices share an address,
// and that the first one it cannot hold is refused with the setting to
// change.
func TestManyNodesOnOneNetwork(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		others   int    // networks made before "big"
		want     int    // nodes "big" holds, or 10,000 if at least that
		wantBits int    // its prefix length then
		refusal  string // a part of the message for the node past them
	}{
		{"default, alone", DefaultConfig(), 0, 10000, 13, ""},
		{"default, beside another network", DefaultConfig(), 1, 10000, 13, ""},
		// Four networks share the pool: each has a /14 to grow into.
		{"default, beside three networks", DefaultConfig(), 3, 7295, 14, "no free block beside it to grow into"},
		{"default with /24 slices only", DefaultConfig().WithSlice(24), 0, 2047, 13, "the most a network of the pool"},
		{"default with small /26 slices", DefaultConfig().WithSlice(26), 0, 7807, 13, "the most a network of the pool"},
		{"first version's", V1Config(), 0, 63, 18, "its 63 node slices are taken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, tc.cfg)
			for i := range tc.others {
				if _, err := p.AddNetwork(fmt.Sprintf("other%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := p.AddNetwork("big"); err != nil {
				t.Fatal(err)
			}
			n := 0
			var err error
			for ; n < 10000; n++ {
				if _, err = p.AddNode("big", fmt.Sprintf("node%05d", n)); err != nil {
					break
				}
			}
			if n != tc.want {
				t.Fatalf("network holds %d nodes (stopped by %v), want %d", n, err, tc.want)
			}
			if n < 10000 && (!errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), tc.refusal)) {
				t.Fatalf("node %d: %v, want ErrExhausted saying %q", n, err, tc.refusal)
			}
			if s, _ := p.Subnet("big"); s.Bits() != tc.wantBits {
				t.Fatalf("subnet %s, want a /%d", s, tc.wantBits)
			}
			if err := p.Check(); err != nil {
				t.Fatal(err)
			}
			if err := noSharedAddress(p); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// noSharedAddress checks, by addresses alone, that no two of the pool's
// networks overlap, and within each no two slices, nor a slice and the VIP
// range: every container address, VTEP and gateway is then one owner's.
func noSharedAddress(p *Pool) error {
	type span struct {
		p    netip.Prefix
		what string
	}
	var all []span
	for _, id := range p.NetworkIDs() {
		s, _ := p.Subnet(id)
		if s == p.Config.Pool {
			return fmt.Errorf("network %s is the whole pool %s", id, s)
		}
		vips := p.vipRange(s)
		all = append(all, span{vips, id + " VIPs"})
		for node, sl := range p.Slices(id) {
			if !s.Contains(sl.Addr()) || (sl.Bits() != p.Config.SliceBits && sl.Bits() != p.Config.SmallSliceBits) {
				return fmt.Errorf("slice %s of %s is not a /%d or /%d of %s", sl, node, p.Config.SliceBits, p.Config.SmallSliceBits, s)
			}
			all = append(all, span{sl, id + " " + node})
		}
	}
	slices.SortFunc(all, func(a, b span) int { return a.p.Addr().Compare(b.p.Addr()) })
	for i := 1; i < len(all); i++ {
		if all[i-1].p.Overlaps(all[i].p) {
			return fmt.Errorf("%s (%s) and %s (%s) share addresses", all[i-1].what, all[i-1].p, all[i].what, all[i].p)
		}
	}
	return nil
}

// TestGrowInPlace follows a network of the default plan through its first
// growth: its base, VIPs and slices stay; the next network is placed far
// from it; and one placed beside it stops its growth.
func TestGrowInPlace(t *testing.T) {
	p := newPool(t, DefaultConfig())
	steps := []op{
		{"net", "a", "", "10.240.0.0/20"},
		{"vip", "a", "web", "10.240.0.1"},
		{"node", "a", "n0", "10.240.1.0/24"}, // past the /24 of VIPs
		{"net", "b", "", "10.248.0.0/20"},    // the farthest block
		{"net", "c", "", "10.244.0.0/20"},    // then between
	}
	for i := 1; i < 15; i++ {
		steps = append(steps, op{do: "node", a: "a", b: fmt.Sprintf("n%d", i)})
	}
	steps = append(steps,
		op{"node", "a", "n15", "10.240.16.0/24"}, // the first slice past the /20: grown
		op{"vip", "a", "web", "10.240.0.1"},
		op{"node", "a", "n0", "10.240.1.0/24"},
	)
	for i := 16; i < 127; i++ {
		steps = append(steps, op{do: "node", a: "a", b: fmt.Sprintf("n%d", i)})
	}
	steps = append(steps,
		op{"node", "a", "n127", "10.240.128.0/27"}, // the wide /17 is full: a small slice past it
		op{"node", "a", "n127", "10.240.128.0/27"},
		op{"node", "a", "n128", "10.240.128.32/27"},
		op{"rmnode", "a", "n5", ""},
		op{"node", "a", "n129", "10.240.6.0/24"}, // a wide slice is free again: the next comes wide
	)
	for i, o := range steps {
		if got := o.run(p); o.want != "" && got != o.want {
			t.Fatalf("step %d %v = %q, want %q", i, o, got, o.want)
		}
	}
	if s, _ := p.Subnet("a"); s.String() != "10.240.0.0/16" {
		t.Fatalf("subnet of a = %s, want 10.240.0.0/16", s)
	}
	// c at 10.244.0.0/20 bounds a at a /14: 127 wide slices, 7,168 small.
	for i := 130; ; i++ {
		if _, err := p.AddNode("a", fmt.Sprintf("n%d", i)); err != nil {
			if s, _ := p.Subnet("a"); s.String() != "10.240.0.0/14" || i-1 != 7295 {
				t.Fatalf("a stopped at %d nodes as %s (%v), want 7,295 as 10.240.0.0/14", i-1, s, err)
			}
			break
		}
	}
	// A subnet chosen inside a grown network is refused.
	if got := (op{do: "fixed", a: "d", b: "10.241.0.0/23"}).run(p); got != "taken" {
		t.Fatalf("a chosen subnet inside a grown network: %q, want taken", got)
	}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	p.RemoveNetwork("a")
	if p.Grown != nil {
		t.Fatalf("Grown = %v after the network went", p.Grown)
	}
}

// TestFirstVersionPoolDecodes decodes a pool as the first version stored
// it (no grow_bits, vip_bits or grown) and checks it goes on as it did:
// slice 0 the VIPs, networks that never grow, next-fit from its cursor.
func TestFirstVersionPoolDecodes(t *testing.T) {
	const stored = `{"config":{"pool":"10.240.0.0/12","network_bits":18,"slice_bits":24},` +
		`"nets":{"owners":{"app_default":0,"shared":1},"next":2},` +
		`"networks":{"app_default":{"slices":{"owners":{"n1":1,"n2":2},"next":3},"vips":{"owners":{"app/web":1},"next":2}},` +
		`"shared":{"slices":{},"vips":{}}}}`
	var p Pool
	if err := json.Unmarshal([]byte(stored), &p); err != nil {
		t.Fatal(err)
	}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	if p.Config != V1Config() {
		t.Fatalf("config %+v, want the first version's", p.Config)
	}
	for i, o := range []op{
		{"node", "app_default", "n1", "10.240.1.0/24"},
		{"node", "app_default", "n3", "10.240.3.0/24"},
		{"vip", "app_default", "app/web", "10.240.0.1"},
		{"vip", "app_default", "app/db", "10.240.0.2"},
		{"net", "third", "", "10.240.128.0/18"},
		{"node", "shared", "n1", "10.240.65.0/24"},
	} {
		if got := o.run(&p); got != o.want {
			t.Fatalf("step %d %v = %q, want %q", i, o, got, o.want)
		}
	}
	for i := 4; i <= 63; i++ {
		op{do: "node", a: "app_default", b: fmt.Sprintf("n%d", i)}.run(&p)
	}
	if got := (op{do: "node", a: "app_default", b: "n64"}).run(&p); got != "exhausted" {
		t.Fatalf("64th node of a first-version network: %q, want exhausted (it never grows)", got)
	}
	if s, _ := p.Subnet("app_default"); s.String() != "10.240.0.0/18" {
		t.Fatalf("subnet %s, want 10.240.0.0/18", s)
	}
}

// BenchmarkAddNode10k measures giving 10,000 nodes a slice of one network
// of the default plan, as the FSM does when a task first lands on each.
//
//	go test -run '^$' -bench AddNode10k -benchtime 5x ./internal/ipam
func BenchmarkAddNode10k(b *testing.B) {
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("node%05d", i)
	}
	for b.Loop() {
		p, _ := New(DefaultConfig())
		if _, err := p.AddNetwork("app_default"); err != nil {
			b.Fatal(err)
		}
		for _, n := range names {
			if _, err := p.AddNode("app_default", n); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(names)), "ns/node")
}

// BenchmarkCloneAddNode10k measures what the FSM pays for one more node's
// slice once a network holds 10,000: a copy of the pool (its objects are
// immutable in the store) and the allocation in the copy.
func BenchmarkCloneAddNode10k(b *testing.B) {
	p, _ := New(DefaultConfig())
	if _, err := p.AddNetwork("app_default"); err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		if _, err := p.AddNode("app_default", fmt.Sprintf("node%05d", i)); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		c := p.Clone()
		if _, err := c.AddNode("app_default", "one-more"); err != nil {
			b.Fatal(err)
		}
	}
}
