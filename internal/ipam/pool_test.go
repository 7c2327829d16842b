package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

func newPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// op is one step of a scenario: an allocation with the answer expected, or
// a release.
type op struct {
	do   string // net, node, vip, rmnet, rmnode, rmvip, rmeverywhere
	a, b string
	want string // the prefix or address; "exhausted", "notfound", "invalid"
}

func (o op) run(p *Pool) string {
	var s fmt.Stringer
	var err error
	switch o.do {
	case "net":
		s, err = p.AddNetwork(o.a)
	case "fixed":
		sub, perr := netip.ParsePrefix(o.b)
		if perr != nil {
			sub = netip.Prefix{}
		}
		s, err = p.AddFixedNetwork(o.a, sub)
	case "node":
		s, err = p.AddNode(o.a, o.b)
	case "vip":
		s, err = p.AddVIP(o.a, o.b)
	case "rmnet":
		p.RemoveNetwork(o.a)
	case "rmnode":
		p.RemoveNode(o.a, o.b)
	case "rmvip":
		p.RemoveVIP(o.a, o.b)
	case "rmeverywhere":
		p.RemoveNodeEverywhere(o.a)
	}
	switch {
	case errors.Is(err, ErrExhausted):
		return "exhausted"
	case errors.Is(err, ErrNotFound):
		return "notfound"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrTaken):
		return "taken"
	case err != nil:
		return err.Error()
	case s == nil:
		return ""
	}
	return s.String()
}

func TestPoolScenarios(t *testing.T) {
	small := Config{Pool: netip.MustParsePrefix("10.240.0.0/22"), NetworkBits: 23, SliceBits: 25}
	for _, tc := range []struct {
		name string
		cfg  Config
		ops  []op
	}{
		{"layout", V1Config(), []op{
			{"net", "a", "", "10.240.0.0/18"},
			{"net", "b", "", "10.240.64.0/18"},
			{"node", "a", "n1", "10.240.1.0/24"},
			{"node", "a", "n2", "10.240.2.0/24"},
			{"node", "b", "n1", "10.240.65.0/24"},
			{"vip", "a", "web", "10.240.0.1"},
			{"vip", "a", "db", "10.240.0.2"},
			{"vip", "b", "web", "10.240.64.1"},
		}},
		{"idempotent per owner", V1Config(), []op{
			{"net", "a", "", "10.240.0.0/18"},
			{"net", "a", "", "10.240.0.0/18"},
			{"node", "a", "n1", "10.240.1.0/24"},
			{"node", "a", "n1", "10.240.1.0/24"},
			{"vip", "a", "web", "10.240.0.1"},
			{"vip", "a", "web", "10.240.0.1"},
		}},
		{"next-fit: a released block comes back last", small, []op{
			{"net", "a", "", "10.240.0.0/23"},
			{"node", "a", "n1", "10.240.0.128/25"},
			{"node", "a", "n2", "10.240.1.0/25"},
			{"rmnode", "a", "n1", ""},
			{"node", "a", "n3", "10.240.1.128/25"},
			{"node", "a", "n4", "10.240.0.128/25"}, // wrapped to the freed one
			{"node", "a", "n5", "exhausted"},
			{"rmeverywhere", "n2", "", ""},
			{"node", "a", "n5", "10.240.1.0/25"},
		}},
		{"pool exhausted, then freed", small, []op{
			{"net", "a", "", "10.240.0.0/23"},
			{"net", "b", "", "10.240.2.0/23"},
			{"net", "c", "", "exhausted"},
			{"rmnet", "a", "", ""},
			{"net", "c", "", "10.240.0.0/23"},
			{"node", "a", "n1", "notfound"}, // a's slices went with it
		}},
		{"vips bounded", Config{Pool: netip.MustParsePrefix("10.240.0.0/22"), NetworkBits: 23, SliceBits: 29}, []op{
			{"net", "a", "", "10.240.0.0/23"},
			{"vip", "a", "s1", "10.240.0.1"},
			{"vip", "a", "s6", "10.240.0.2"},
			{"vip", "a", "s2", "10.240.0.3"},
			{"vip", "a", "s3", "10.240.0.4"},
			{"vip", "a", "s4", "10.240.0.5"},
			{"vip", "a", "s5", "10.240.0.6"},
			{"vip", "a", "s7", "exhausted"},
			{"rmvip", "a", "s2", ""},
			{"vip", "a", "s7", "10.240.0.3"},
		}},
		{"chosen subnets: outside and inside the pool, overlaps refused", V1Config(), []op{
			{"fixed", "own", "10.100.0.0/16", "10.100.0.0/16"},
			{"fixed", "own", "10.100.0.0/16", "10.100.0.0/16"}, // idempotent
			{"fixed", "own", "10.101.0.0/16", "taken"},         // no change of subnet
			{"node", "own", "n1", "10.100.1.0/24"},
			{"vip", "own", "web", "10.100.0.1"},
			{"fixed", "clash", "10.100.128.0/17", "taken"},
			{"fixed", "in", "10.240.0.0/18", "10.240.0.0/18"},
			{"net", "a", "", "10.240.64.0/18"}, // the pool skips the chosen block
			{"fixed", "onA", "10.240.64.0/20", "taken"},
			{"fixed", "half", "10.240.129.0/24", "invalid"}, // a /24 holds one slice
			{"fixed", "hostbits", "10.50.0.1/16", "invalid"},
			{"fixed", "v6", "fd00::/64", "invalid"},
			{"fixed", "a", "10.60.0.0/16", "taken"}, // a has a pool subnet
			{"rmnet", "own", "", ""},
			{"fixed", "clash", "10.100.128.0/17", "10.100.128.0/17"},
		}},
		{"bad arguments", V1Config(), []op{
			{"net", "", "", "invalid"},
			{"node", "missing", "n1", "notfound"},
			{"vip", "missing", "web", "notfound"},
			{"net", "a", "", "10.240.0.0/18"},
			{"node", "a", "", "invalid"},
			{"vip", "a", "", "invalid"},
			{"rmnode", "missing", "n1", ""},
			{"rmvip", "missing", "web", ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, tc.cfg)
			for i, o := range tc.ops {
				if got := o.run(p); got != o.want {
					t.Fatalf("step %d %s(%s,%s) = %q, want %q", i, o.do, o.a, o.b, got, o.want)
				}
				if err := p.Check(); err != nil {
					t.Fatalf("step %d: Check: %v", i, err)
				}
			}
		})
	}
}

func TestPoolAccessors(t *testing.T) {
	p := newPool(t, V1Config())
	for _, o := range []op{{do: "net", a: "b"}, {do: "net", a: "a"}, {do: "node", a: "a", b: "n1"}, {do: "node", a: "a", b: "n2"}, {do: "vip", a: "a", b: "web"}} {
		o.run(p)
	}
	if got := p.NetworkIDs(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("NetworkIDs = %v", got)
	}
	want := map[string]netip.Prefix{"n1": netip.MustParsePrefix("10.240.65.0/24"), "n2": netip.MustParsePrefix("10.240.66.0/24")}
	if got := p.Slices("a"); !reflect.DeepEqual(got, want) {
		t.Errorf("Slices = %v, want %v", got, want)
	}
	if v, ok := p.VIP("a", "web"); !ok || v != netip.MustParseAddr("10.240.64.1") {
		t.Errorf("VIP = %v %v", v, ok)
	}
	if _, ok := p.VIP("a", "db"); ok {
		t.Error("VIP of a service without one")
	}
	if p.Slices("missing") != nil {
		t.Error("Slices of a missing network")
	}
	s := netip.MustParsePrefix("10.240.65.0/24")
	if VTEP(s) != netip.MustParseAddr("10.240.65.0") || Gateway(s) != netip.MustParseAddr("10.240.65.1") {
		t.Errorf("VTEP/Gateway = %v %v", VTEP(s), Gateway(s))
	}
}

func TestCloneIsDeep(t *testing.T) {
	p := newPool(t, V1Config())
	op{do: "net", a: "a"}.run(p)
	op{do: "node", a: "a", b: "n1"}.run(p)
	before, _ := json.Marshal(p)
	c := p.Clone()
	op{do: "node", a: "a", b: "n2"}.run(c)
	op{do: "vip", a: "a", b: "web"}.run(c)
	op{do: "net", a: "b"}.run(c)
	after, _ := json.Marshal(p)
	if string(before) != string(after) {
		t.Fatalf("changing the clone changed the original:\n%s\n%s", before, after)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	p := newPool(t, V1Config())
	for _, o := range []op{{do: "net", a: "a"}, {do: "node", a: "a", b: "n1"}, {do: "vip", a: "a", b: "web"}, {do: "rmnode", a: "a", b: "n1"}} {
		o.run(p)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q Pool
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Clone(), &q) { // Clone: without the derived caches
		t.Fatalf("round trip changed the pool:\n%+v\n%+v", p, &q)
	}
	// The decoded pool goes on exactly as the original: next-fit's cursor
	// came along.
	n2 := op{do: "node", a: "a", b: "n2"}
	if a, b := n2.run(p), n2.run(&q); a != b || a != "10.240.2.0/24" {
		t.Fatalf("after the round trip: %s vs %s", a, b)
	}
}

func TestCheckFindsCorruption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(p *Pool)
	}{
		{"two owners of a slice", func(p *Pool) { p.Networks["a"].Slices.Owners["n2"] = 1 }},
		{"slice 0 to a node", func(p *Pool) { p.Networks["a"].Slices.Owners["n1"] = 0 }},
		{"subnet out of the pool", func(p *Pool) { p.Nets.Owners["a"] = 64 }},
		{"network without subnet", func(p *Pool) { p.Networks["x"] = &Network{} }},
		{"vip beyond slice 0", func(p *Pool) { p.Networks["a"].VIPs.Owners["web"] = 255 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, V1Config())
			for _, o := range []op{{do: "net", a: "a"}, {do: "node", a: "a", b: "n1"}, {do: "vip", a: "a", b: "web"}} {
				o.run(p)
			}
			if err := p.Check(); err != nil {
				t.Fatal(err)
			}
			tc.corrupt(p)
			if err := p.Check(); err == nil {
				t.Fatal("Check passed a broken pool")
			}
		})
	}
}

func TestSlice(t *testing.T) {
	if _, err := NewSlice(netip.MustParsePrefix("10.240.1.0/30")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("NewSlice(/30) = %v", err)
	}
	s, err := NewSlice(netip.MustParsePrefix("10.240.1.0/29"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range []string{"t1", "t2", "t3", "t1", "t4", "t5", "t6"} {
		a, err := s.Take(o)
		if errors.Is(err, ErrExhausted) {
			got = append(got, o+"=exhausted")
			continue
		}
		got = append(got, o+"="+a.String())
	}
	s.Release("t2")
	a, _ := s.Take("t6")
	got = append(got, "t6="+a.String())
	want := []string{"t1=10.240.1.2", "t2=10.240.1.3", "t3=10.240.1.4", "t1=10.240.1.2", "t4=10.240.1.5", "t5=10.240.1.6", "t6=exhausted", "t6=10.240.1.3"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	c := s.Clone()
	c.Release("t1")
	if _, ok := s.Addrs.Owners["t1"]; !ok {
		t.Fatal("Clone shares its owners with the original")
	}
}

// TestSliceChanges: the nodes whose slice of some network differs between
// two pools, and no other: a VIP or another node's slice is not theirs.
func TestSliceChanges(t *testing.T) {
	base := func(t *testing.T) *Pool {
		p := newPool(t, DefaultConfig())
		for _, o := range []op{{do: "net", a: "a"}, {do: "net", a: "b"}, {do: "node", a: "a", b: "n1"}, {do: "node", a: "a", b: "n2"}, {do: "node", a: "b", b: "n2"}} {
			if got := o.run(p); got == "" || got == "exhausted" {
				t.Fatalf("%v: %s", o, got)
			}
		}
		return p
	}
	cases := []struct {
		name string
		ops  []op
		want []string
	}{
		{"nothing", nil, nil},
		{"a VIP", []op{{do: "vip", a: "a", b: "svc"}}, nil},
		{"a node's first slice", []op{{do: "node", a: "b", b: "n1"}}, []string{"n1"}},
		{"a slice it has already", []op{{do: "node", a: "a", b: "n1"}}, nil},
		{"a new node", []op{{do: "node", a: "a", b: "n3"}}, []string{"n3"}},
		{"a slice freed", []op{{do: "rmnode", a: "a", b: "n2"}}, []string{"n2"}},
		{"a node leaving", []op{{do: "rmeverywhere", a: "n2"}}, []string{"n2"}},
		{"a network gone", []op{{do: "rmnet", a: "b"}}, []string{"n2"}},
		{"a new network", []op{{do: "net", a: "c"}, {do: "node", a: "c", b: "n1"}}, []string{"n1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := base(t)
			after := before.Clone()
			for _, o := range tc.ops {
				o.run(after)
			}
			nodes := map[string]bool{}
			SliceChanges(before, after, nodes)
			got := slices.Sorted(maps.Keys(nodes))
			if !slices.Equal(got, tc.want) {
				t.Errorf("changed %v, want %v", got, tc.want)
			}
			back := map[string]bool{}
			SliceChanges(after, before, back)
			if got := slices.Sorted(maps.Keys(back)); !slices.Equal(got, tc.want) {
				t.Errorf("the other way round: changed %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("no pool before", func(t *testing.T) {
		nodes := map[string]bool{}
		SliceChanges(nil, base(t), nodes)
		if got := slices.Sorted(maps.Keys(nodes)); !slices.Equal(got, []string{"n1", "n2"}) {
			t.Errorf("changed %v, want n1 and n2", got)
		}
	})
}

// TestEqualAgreesWithEncoding: Equal says two pools differ exactly when
// their encodings do, for every kind of change: the store skips writing a
// pool Equal calls unchanged, so a change it missed would be lost.
func TestEqualAgreesWithEncoding(t *testing.T) {
	base := func() *Pool {
		p := newPool(t, V1Config())
		for _, o := range []op{{do: "net", a: "a"}, {do: "node", a: "a", b: "n1"}, {do: "vip", a: "a", b: "web"}} {
			o.run(p)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		change []op
	}{
		{"nothing", nil},
		{"a network again", []op{{do: "net", a: "a"}}},
		{"a node's slice again", []op{{do: "node", a: "a", b: "n1"}}},
		{"a new network", []op{{do: "net", a: "b"}}},
		{"a new slice", []op{{do: "node", a: "a", b: "n2"}}},
		{"a slice removed", []op{{do: "rmnode", a: "a", b: "n1"}}},
		{"a new VIP", []op{{do: "vip", a: "a", b: "api"}}},
		{"a slice removed and taken again", []op{{do: "rmnode", a: "a", b: "n1"}, {do: "node", a: "a", b: "n1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := base()
			p := old.Clone()
			for _, o := range tc.change {
				o.run(p)
			}
			a, _ := json.Marshal(old)
			b, _ := json.Marshal(p)
			if want := string(a) == string(b); old.Equal(p) != want || p.Equal(old) != want {
				t.Errorf("Equal = %v, encodings equal = %v:\n%s\n%s", old.Equal(p), want, a, b)
			}
		})
	}
	var none *Pool
	if none.Equal(base()) || !none.Equal(nil) {
		t.Error("a nil pool equals only nil")
	}
}
