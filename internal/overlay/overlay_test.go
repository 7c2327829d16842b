package overlay

import (
	"context"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/ipam"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const port = 7000

func addrPort(c ctr) netip.AddrPort { return netip.AddrPortFrom(c.addr, port) }

// TestAcrossHosts: three hosts, each the others' peer; a container on
// each reaches the others by address, the server sees the client's own
// address (no NAT between slices), and a second Apply changes nothing.
func TestAcrossHosts(t *testing.T) {
	w := newWorld(t, 3, "a")
	w.applyAll()
	for _, h := range w.hosts {
		w.listen(h.ctrs["a"], port)
	}
	for _, pair := range [][2]int{{0, 1}, {0, 2}, {2, 1}, {1, 0}} {
		from, to := w.hosts[pair[0]].ctrs["a"], w.hosts[pair[1]].ctrs["a"]
		got, err := reaches(from.ns, addrPort(to), 5*time.Second)
		if err != nil {
			t.Fatalf("host %d to host %d: %v", pair[0]+1, pair[1]+1, err)
		}
		if got != from.addr.String() {
			t.Errorf("host %d saw the client at %s, want %s (masqueraded?)", pair[1]+1, got, from.addr)
		}
	}
	ch, err := w.hosts[0].ov.Apply(context.Background(), w.desired(0, 1, 2))
	if err != nil || ch != (Changes{}) {
		t.Fatalf("second Apply = %+v, %v; want no changes", ch, err)
	}
	checkDevice(t, w, 0)
}

// checkDevice checks the device's settings and its entries for peers.
func checkDevice(t *testing.T, w *world, i int) {
	t.Helper()
	h := w.hosts[i]
	nh, err := h.ov.handle()
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	l, err := nh.LinkByName(DefaultDevice)
	if err != nil {
		t.Fatal(err)
	}
	vx := l.(*netlink.Vxlan)
	if vx.MTU != 1450 || vx.Learning || vx.VxlanId != DefaultVNI || vx.Port != DefaultPort || vx.HardwareAddr.String() != MACFor(h.underlay).String() {
		t.Errorf("device: mtu %d learning %v vni %d port %d mac %s", vx.MTU, vx.Learning, vx.VxlanId, vx.Port, vx.HardwareAddr)
	}
	if mtu, _ := h.ov.MTU(); mtu != 1450 {
		t.Errorf("MTU() = %d", mtu)
	}
	addrs, _ := nh.AddrList(l, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != ipam.VTEP(h.ctrs["a"].slice).String()+"/32" {
		t.Errorf("device addresses = %v, want the slice's .0/32", addrs)
	}
}

// entries lists the device's routes, neighbours and FDB entries of host i
// as text, for comparisons.
func entries(t *testing.T, h *host) (routes, neighs, fdb []string, index int) {
	t.Helper()
	nh, err := h.ov.handle()
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	l, err := nh.LinkByName(DefaultDevice)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := nh.RouteList(l, netlink.FAMILY_V4)
	for _, r := range rs {
		routes = append(routes, r.Dst.String()+" via "+r.Gw.String())
	}
	ns, _ := nh.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	for _, n := range ns {
		neighs = append(neighs, n.IP.String()+" "+n.HardwareAddr.String())
	}
	fs, _ := nh.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	for _, n := range fs {
		fdb = append(fdb, n.HardwareAddr.String()+" "+n.IP.String())
	}
	return routes, neighs, fdb, l.Attrs().Index
}

func mentions(list []string, s string) bool {
	for _, l := range list {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// TestPeerRemoved: host 3 leaves host 1's desired set; its route,
// neighbour and FDB entries go, host 2 stays reachable, host 3 does not.
func TestPeerRemoved(t *testing.T) {
	w := newWorld(t, 3, "a")
	w.applyAll()
	for _, h := range w.hosts {
		w.listen(h.ctrs["a"], port)
	}
	c1, c2, c3 := w.hosts[0].ctrs["a"], w.hosts[1].ctrs["a"], w.hosts[2].ctrs["a"]
	if _, err := reaches(c1.ns, addrPort(c3), 5*time.Second); err != nil {
		t.Fatalf("before: %v", err)
	}
	// Host 3 leaves the cluster: its slices are freed and host 1's
	// desired state, derived from the pool, no longer has it.
	pool := w.pool.Clone()
	pool.RemoveNodeEverywhere(w.hosts[2].ns)
	underlays := map[string]netip.Addr{}
	for _, h := range w.hosts {
		underlays[h.ns] = h.underlay
	}
	ch, err := w.hosts[0].ov.Apply(context.Background(), DesiredFrom(pool, w.hosts[0].ns, underlays))
	// Route, neighbour and FDB entry removed; the INPUT rules rewritten.
	if err != nil || ch != (Changes{Added: 1, Removed: 3}) {
		t.Fatalf("Apply without host 3 = %+v, %v; want 3 removed, 1 rule set rewritten", ch, err)
	}
	routes, neighs, fdb, _ := entries(t, w.hosts[0])
	gone := []struct {
		list []string
		what string
	}{{routes, c3.slice.String()}, {neighs, ipam.VTEP(c3.slice).String()}, {fdb, MACFor(w.hosts[2].underlay).String()}}
	for _, g := range gone {
		if mentions(g.list, g.what) {
			t.Errorf("%s still in %v", g.what, g.list)
		}
	}
	if !mentions(routes, c2.slice.String()) || !mentions(fdb, w.hosts[1].underlay.String()) {
		t.Errorf("host 2's entries went too: %v %v", routes, fdb)
	}
	if _, err := reaches(c1.ns, addrPort(c2), 5*time.Second); err != nil {
		t.Errorf("host 2 after: %v", err)
	}
	if got, err := call(c1.ns, addrPort(c3), time.Second); err == nil {
		t.Errorf("host 3 still reached (saw %s)", got)
	}
}

// TestRestartConverges: a new Overlay, as after an agent restart, takes
// over the device the last run left (same index: not remade), removes the
// stale peer and entries nothing wants, and puts back a missing hook.
func TestRestartConverges(t *testing.T) {
	w := newWorld(t, 3, "a")
	w.applyAll()
	h := w.hosts[0]
	_, _, _, before := entries(t, h)
	junk := netip.MustParsePrefix("10.240.50.0/24")
	w.run(h.ns, "ip", "route", "add", junk.String(), "via", ipam.VTEP(junk).String(), "dev", DefaultDevice, "onlink")
	w.run(h.ns, "ip", "neigh", "add", "10.240.50.0", "lladdr", "0a:be:01:02:03:04", "dev", DefaultDevice, "nud", "permanent")
	w.run(h.ns, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", DefaultDevice, "dst", "198.18.0.99")
	w.run(h.ns, "iptables", "-t", "nat", "-D", "POSTROUTING", "-m", "comment", "--comment", "berth overlay", "-j", natChain)
	// Docker, restarted, puts its jumps first.
	w.run(h.ns, "iptables", "-N", "DOCKER-USER")
	w.run(h.ns, "iptables", "-I", "FORWARD", "1", "-j", "DOCKER-USER")

	restarted, err := New(h.ov.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := restarted.Apply(context.Background(), w.desired(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	routes, neighs, fdb, after := entries(t, h)
	if after != before {
		t.Errorf("device remade: index %d, was %d", after, before)
	}
	for _, stale := range []string{junk.String(), w.hosts[2].ctrs["a"].slice.String(), "10.240.50.0", "198.18.0.99", w.hosts[2].underlay.String()} {
		if mentions(routes, stale) || mentions(neighs, stale) || mentions(fdb, stale) {
			t.Errorf("stale %s left: %v %v %v", stale, routes, neighs, fdb)
		}
	}
	for _, chain := range []string{"FORWARD", "INPUT"} {
		first := lines(w.run(h.ns, "iptables", "-S", chain))[1]
		if !strings.Contains(first, "berth overlay") {
			t.Errorf("first rule of %s is %q, not the overlay's jump", chain, first)
		}
	}
	if ch.Removed != 6 {
		t.Errorf("Apply = %+v, want 6 removed (3 junk, 3 of host 3)", ch)
	}
	w.listen(w.hosts[1].ctrs["a"], port)
	if _, err := reaches(h.ctrs["a"].ns, addrPort(w.hosts[1].ctrs["a"]), 5*time.Second); err != nil {
		t.Errorf("host 2 after the restart: %v", err)
	}
}

// TestNetworksIsolated: containers on network a reach a across hosts; a
// container on a cannot reach one on b on another host, whether or not
// the host's FORWARD policy drops (a node without Docker accepts).
func TestNetworksIsolated(t *testing.T) {
	for _, policy := range []string{"DROP", "ACCEPT"} {
		t.Run(policy, func(t *testing.T) {
			w := newWorld(t, 2, "a", "b")
			for _, h := range w.hosts {
				w.run(h.ns, "iptables", "-P", "FORWARD", policy)
			}
			w.applyAll()
			a2, b2 := w.hosts[1].ctrs["a"], w.hosts[1].ctrs["b"]
			w.listen(a2, port)
			w.listen(b2, port)
			a1 := w.hosts[0].ctrs["a"]
			if _, err := reaches(a1.ns, addrPort(a2), 5*time.Second); err != nil {
				t.Fatalf("a to a: %v", err)
			}
			if got, err := call(a1.ns, addrPort(b2), time.Second); err == nil {
				t.Fatalf("a on host 1 reached b on host 2 (saw %s)", got)
			}
		})
	}
}

// TestRemove: the device and every tagged rule go; twice is no error.
func TestRemove(t *testing.T) {
	w := newWorld(t, 2, "a")
	w.applyAll()
	h := w.hosts[0]
	for i := 0; i < 2; i++ {
		if err := h.ov.Remove(context.Background()); err != nil {
			t.Fatalf("Remove %d: %v", i+1, err)
		}
	}
	if out := w.run(h.ns, "iptables-save"); strings.Contains(out, "berth overlay") || strings.Contains(out, filterChain) {
		t.Errorf("rules left:\n%s", out)
	}
	if out := w.run(h.ns, "ip", "link"); strings.Contains(out, DefaultDevice) {
		t.Errorf("device left:\n%s", out)
	}
}

// TestNotOurs: a device of the overlay's name that berth did not make is
// left alone.
func TestNotOurs(t *testing.T) {
	w := newWorld(t, 1)
	h := w.hosts[0]
	w.run(h.ns, "ip", "link", "add", DefaultDevice, "type", "vxlan", "id", "7", "dstport", "4789")
	_, err := h.ov.Apply(context.Background(), Desired{})
	if err == nil || !strings.Contains(err.Error(), "berth did not make it") {
		t.Fatalf("Apply = %v, want ErrNotOurs", err)
	}
	if err := h.ov.Remove(context.Background()); err == nil {
		t.Fatal("Remove removed a device berth did not make")
	}
	if out := w.run(h.ns, "ip", "-d", "link", "show", DefaultDevice); !strings.Contains(out, "id 7") {
		t.Fatalf("the device changed: %s", out)
	}
}

// TestPoolUnreachable: with the networks' subnets in the Desired state, an
// address of a network that no bridge or overlay route covers (a slice of
// a network this host is not on) is unreachable here, even with a default
// route that would otherwise carry it off the cluster; the slices of the
// host's own networks still route, the rest of the pool (where a
// machine's resolver may be) keeps the default route, and Remove takes the
// routes away.
func TestPoolUnreachable(t *testing.T) {
	w := newWorld(t, 2, "a", "b")
	h1 := w.hosts[0]
	w.ip("-n", w.ul, "addr", "add", "198.18.0.254/24", "dev", "br0")
	w.ip("-n", h1.ns, "route", "add", "default", "via", "198.18.0.254")
	d := w.desired(0, 1)
	d.Networks = slices.DeleteFunc(d.Networks, func(n Network) bool { s, _ := w.pool.Subnet("b"); return n.Subnet == s })
	d.Peers[0].Slices = []netip.Prefix{w.hosts[1].ctrs["a"].slice}
	b2 := w.hosts[1].ctrs["b"].addr.String()
	if out := w.run(h1.ns, "ip", "route", "get", b2); strings.Contains(out, "unreachable") {
		t.Fatalf("unreachable before the pool's route: %s", out)
	}
	for _, id := range []string{"a", "b"} {
		s, _ := w.pool.Subnet(id)
		d.Subnets = append(d.Subnets, s)
	}
	if _, err := h1.ov.Apply(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if out := w.run(h1.ns, "ip", "route", "get", "10.255.255.53"); !strings.Contains(out, "via 198.18.0.254") {
		t.Errorf("an address of the pool in no network (a resolver's, say): %s; want the default route", out)
	}
	if out, _ := exec.Command("ip", "-n", h1.ns, "route", "get", b2).CombinedOutput(); !strings.Contains(string(out), "No route to host") {
		t.Errorf("b's address on host 2 from host 1, which is not on b: %s; want unreachable, not the default route", out)
	}
	if out := w.run(h1.ns, "ip", "route", "get", w.hosts[1].ctrs["a"].addr.String()); !strings.Contains(out, DefaultDevice) {
		t.Errorf("a's address on host 2: %s; want the overlay's route", out)
	}
	if err := h1.ov.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out := w.run(h1.ns, "ip", "route", "show", "type", "unreachable"); strings.TrimSpace(out) != "" {
		t.Errorf("routes left after Remove: %s", out)
	}
}

// TestVXLANUntracked: the VXLAN packets between hosts leave no conntrack
// entry on either, while the connection they carry is tracked on both
// (what the VIPs' DNAT and the node's SNAT rely on).
func TestVXLANUntracked(t *testing.T) {
	w := newWorld(t, 2, "a")
	w.applyAll()
	from, to := w.hosts[0].ctrs["a"], w.hosts[1].ctrs["a"]
	w.listen(to, port)
	if _, err := reaches(from.ns, addrPort(to), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for i, h := range w.hosts {
		nh, err := h.ov.handle()
		if err != nil {
			t.Fatal(err)
		}
		flows, err := nh.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
		nh.Close()
		if err != nil {
			t.Fatal(err)
		}
		inner := false
		for _, f := range flows {
			if f.Forward.Protocol == unix.IPPROTO_UDP && f.Forward.DstPort == DefaultPort {
				t.Errorf("host %d tracks a VXLAN flow: %s", i+1, f)
			}
			if f.Forward.Protocol == unix.IPPROTO_TCP && f.Forward.DstIP.Equal(to.addr.AsSlice()) && f.Forward.DstPort == port {
				inner = true
			}
		}
		if !inner {
			t.Errorf("host %d does not track the connection over the overlay (%d flows)", i+1, len(flows))
		}
	}
}
