package overlay

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/internal/ipam"
)

func TestDesiredFrom(t *testing.T) {
	pfx, addr := netip.MustParsePrefix, netip.MustParseAddr
	pool, err := ipam.New(ipam.V1Config()) // the layout these addresses were written for
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct{ network, node string }{
		{"a", "n1"}, {"a", "n2"}, {"a", "n3"}, {"b", "n2"}, {"b", "n1"}, {"c", "n3"}, {"a", "n4"},
	}
	for _, s := range steps {
		if _, err := pool.AddNetwork(s.network); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.AddNode(s.network, s.node); err != nil {
			t.Fatal(err)
		}
	}
	// n4 has no known address.
	underlays := map[string]netip.Addr{"n1": addr("198.18.0.1"), "n2": addr("198.18.0.2"), "n3": addr("198.18.0.3")}
	want := Desired{
		Networks: []Network{
			{Subnet: pfx("10.240.0.0/18"), Slice: pfx("10.240.1.0/24")},
			{Subnet: pfx("10.240.64.0/18"), Slice: pfx("10.240.66.0/24")},
		},
		Peers: []Peer{
			{Underlay: addr("198.18.0.2"), Slices: []netip.Prefix{pfx("10.240.2.0/24"), pfx("10.240.65.0/24")}},
			{Underlay: addr("198.18.0.3"), Slices: []netip.Prefix{pfx("10.240.3.0/24")}}, // not its slice of c
		},
	}
	for i := 0; i < 3; i++ { // map order must not show
		if got := DesiredFrom(pool, "n1", underlays); !reflect.DeepEqual(got, want) {
			t.Fatalf("DesiredFrom =\n%+v\nwant\n%+v", got, want)
		}
	}
	o, _ := New(Config{Underlay: underlays["n1"]})
	if err := o.check(want); err != nil {
		t.Fatalf("the result does not pass Apply's check: %v", err)
	}
	if got := DesiredFrom(pool, "n9", underlays); len(got.Networks) != 0 || len(got.Peers) != 0 {
		t.Fatalf("a node with no slice got %+v", got)
	}
}
