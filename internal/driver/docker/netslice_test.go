package docker

import (
	"crypto/rand"
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// testSlice is a /24 no other test of this run takes: 10.253.R.0/24.
func testSlice(t *testing.T) driver.Slice {
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	s := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 253, b[0], 0}), 24)
	return driver.Slice{Subnet: s, Gateway: netip.AddrFrom4([4]byte{10, 253, b[0], 1}), MTU: 1400}
}

// TestNetworkOnSlice: with a slice, the task's network takes it as its
// subnet, gateway and address range, the MTU and a short bridge name, and
// the running task's status has its address there.
func TestNetworkOnSlice(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	s := testSlice(t)
	cfg := e.task("web", 1, nil)
	cfg.Slices = map[string]driver.Slice{"default": s}
	e.start(d, cfg)
	name := e.app + "_default"
	res, err := d.cli.NetworkInspect(e.ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := res.Network
	if len(n.IPAM.Config) != 1 || n.IPAM.Config[0].Subnet != s.Subnet || n.IPAM.Config[0].Gateway != s.Gateway || n.IPAM.Config[0].IPRange != s.Subnet {
		t.Errorf("IPAM = %+v, want subnet, range %s and gateway %s", n.IPAM.Config, s.Subnet, s.Gateway)
	}
	if n.Options[optMTU] != "1400" || n.Options[optBridgeName] != bridgeName(name) || len(bridgeName(name)) > 15 {
		t.Errorf("options = %v, want MTU 1400 and bridge %s", n.Options, bridgeName(name))
	}
	st, err := d.Inspect(e.ctx, cfg.Task.ID)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netip.ParseAddr(st.Addresses[name])
	if err != nil || !s.Subnet.Contains(a) || a == s.Gateway {
		t.Errorf("addresses = %v, want one in %s on %s", st.Addresses, s.Subnet, name)
	}
}

// TestNetworkOffSliceIsRemade: a network of the name on another subnet
// and without containers is made again on the slice; one with containers
// is an error that says to take the app down.
func TestNetworkOffSliceIsRemade(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	s := testSlice(t)
	name := e.app + "_front"
	if _, err := d.cli.NetworkCreate(e.ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: appLabels(e.app, nil)}); err != nil {
		t.Fatal(err)
	}
	front := func(sv *types.Service) { sv.Networks = []types.NetworkAttachment{{Name: "front"}} }
	cfg := e.task("web", 1, front)
	cfg.Slices = map[string]driver.Slice{"front": s}
	e.start(d, cfg)
	res, err := d.cli.NetworkInspect(e.ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Network.IPAM.Config; len(got) != 1 || got[0].Subnet != s.Subnet {
		t.Fatalf("IPAM = %+v, want the slice %s", got, s.Subnet)
	}

	// "back" is local, with a container on it; then a slice is asked.
	back := func(sv *types.Service) { sv.Networks = []types.NetworkAttachment{{Name: "back"}} }
	e.start(d, e.task("db", 1, back))
	cfg = e.task("db", 2, back)
	b := s.Subnet.Addr().As4()
	b[2]++
	s2 := driver.Slice{Subnet: netip.PrefixFrom(netip.AddrFrom4(b), 24), MTU: 1400}
	b[3] = 1
	s2.Gateway = netip.AddrFrom4(b)
	cfg.Slices = map[string]driver.Slice{"back": s2}
	_, err = d.Start(e.ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "berth down") || !strings.Contains(err.Error(), "containers on it (1)") {
		t.Fatalf("start on a slice over a used local network: %v, want an error saying to run berth down", err)
	}
}

func TestBridgeName(t *testing.T) {
	for _, name := range []string{"a_default", strings.Repeat("x", 300)} {
		if b := bridgeName(name); len(b) > 15 || b != bridgeName(name) || !strings.HasPrefix(b, "brt-") {
			t.Errorf("bridgeName(%q) = %q", name, b)
		}
	}
	if bridgeName("a_default") == bridgeName("b_default") {
		t.Error("two networks share a bridge name")
	}
}

// TestNetworkKeyOf: a Docker network slicedName made is known by the name
// it was made from, for an address of its slice only.
func TestNetworkKeyOf(t *testing.T) {
	slice := netip.MustParsePrefix("10.240.1.0/24")
	in, out := netip.MustParseAddr("10.240.1.7"), netip.MustParseAddr("10.240.2.7")
	sliced := slicedName("app_default", slice)
	for _, tc := range []struct {
		docker string
		a      netip.Addr
		bits   int
		want   string
	}{
		{"app_default", in, 24, "app_default"},
		{sliced, in, 24, "app_default"},
		{sliced, out, 24, sliced},    // another slice: not its tag
		{sliced, in, 0, sliced},      // no prefix length: not told
		{"my.net", in, 24, "my.net"}, // a dot of the user's own
	} {
		if got := networkKeyOf(tc.docker, tc.a, tc.bits); got != tc.want {
			t.Errorf("networkKeyOf(%q, %s, %d) = %q, want %q", tc.docker, tc.a, tc.bits, got, tc.want)
		}
	}
}

// TestSliceTakenNamesTheNetwork: a slice that another Docker network of
// the engine already uses is refused with that network's name.
func TestSliceTakenNamesTheNetwork(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	s := testSlice(t)
	other := e.app + "_othercluster"
	opts := client.NetworkCreateOptions{Driver: "bridge", Labels: appLabels(e.app, nil)}
	withSlice(&opts, other, s)
	if _, err := d.cli.NetworkCreate(e.ctx, other, opts); err != nil {
		t.Fatal(err)
	}
	cfg := e.task("web", 1, nil)
	cfg.Slices = map[string]driver.Slice{"default": s}
	_, err := d.Start(e.ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "--address-pool") {
		t.Fatalf("start on a slice another network has: %v, want an error naming %s", err, other)
	}
}
