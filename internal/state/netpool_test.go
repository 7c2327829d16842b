package state

import (
	"net/netip"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// netApp is testApp with api on "front" and "back", db on "back" only (in
// dnsrr mode), and "ext" an external network api also joins.
func netApp() *types.App {
	app := testApp()
	app.Networks = map[string]*types.Network{"front": {Name: "front"}, "back": {Name: "back"}, "ext": {Name: "shared", External: true}}
	app.Services[0].Networks = []types.NetworkAttachment{{Name: "front"}, {Name: "back"}, {Name: "ext"}}
	app.Services[1].Networks = []types.NetworkAttachment{{Name: "back"}}
	app.Services[1].EndpointMode = types.EndpointDNSRR
	return app
}

// TestNetPoolLifecycle: the app's networks and VIPs are allocated with the
// app, a node's slices with its first placement, in the same entries; a
// removed service frees its VIPs, a removed node its slices, a purge the
// app's own networks (not the external one); a snapshot carries it all.
func TestNetPoolLifecycle(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertNode{Node: testNode("n2")})
	h.mustApply(CreateNetwork{Name: "shared", Now: t0})
	h.mustApply(UpsertApp{App: netApp(), Now: t0})
	p := h.store.View().Pool()
	if got := p.NetworkIDs(); len(got) != 3 {
		t.Fatalf("networks %v, want web_front, web_back, shared", got)
	}
	for _, want := range []struct {
		net, svc string
		ok       bool
	}{{"web_front", "web/api", true}, {"web_back", "web/api", true}, {"shared", "web/api", true}, {"web_back", "web/db", false}} {
		if _, ok := p.VIP(want.net, want.svc); ok != want.ok {
			t.Errorf("VIP of %s on %s: %v, want %v", want.svc, want.net, ok, want.ok)
		}
	}

	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("a1", "api", 1), testTask("d1", "db", 1)}, Now: t0})
	if s := h.store.View().Pool().Slices("web_back"); len(s) != 0 {
		t.Fatalf("slices before placement: %v", s)
	}
	h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "a1", NodeID: "n1"}, {TaskID: "d1", NodeID: "n2"}}, Now: t0})
	p = h.store.View().Pool()
	if s := p.Slices("web_back"); len(s) != 2 || s["n1"] == s["n2"] {
		t.Errorf("web_back slices %v, want one each for n1 and n2", s)
	}
	if s := p.Slices("web_front"); len(s) != 1 || !s["n1"].IsValid() {
		t.Errorf("web_front slices %v, want n1's only", s)
	}

	// Addresses reported by the agent are kept, and copied, not shared.
	addrs := map[string]string{"web_back": "10.240.65.2"}
	h.mustApply(TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "a1", State: types.TaskRunning, Addresses: addrs}}, Now: t0})
	addrs["web_back"] = "changed"
	if got := h.store.View().Task("a1").Addresses["web_back"]; got != "10.240.65.2" {
		t.Errorf("task address %q", got)
	}

	// api leaves front and back: its VIPs there go, db's network stays.
	app := netApp()
	app.Services[0].Networks = []types.NetworkAttachment{{Name: "ext"}}
	h.mustApply(UpsertApp{App: app, Now: t0})
	p = h.store.View().Pool()
	if _, ok := p.VIP("web_back", "web/api"); ok {
		t.Error("api keeps a VIP on a network it left")
	}
	if _, ok := p.VIP("shared", "web/api"); !ok {
		t.Error("api lost its VIP on the network it stayed on")
	}

	snap := snapshotOf(t, h.fsm)
	dst := newHarness(t)
	if err := dst.fsm.Restore(ioNopCloser(snap)); err != nil {
		t.Fatal(err)
	}
	if a, b := dst.store.View().Pool(), h.store.View().Pool(); !jsonEqual(a, b) {
		t.Errorf("restored pool differs")
	}

	h.mustApply(DeleteNode{ID: "n2", Now: t0})
	if s := h.store.View().Pool().Slices("web_back"); len(s) != 1 {
		t.Errorf("slices after n2 left: %v", s)
	}
	h.mustApply(PurgeApp{Name: "web"})
	p = h.store.View().Pool()
	if got := p.NetworkIDs(); len(got) != 1 || got[0] != "shared" {
		t.Errorf("networks after purge %v, want the external one only", got)
	}
	if _, ok := p.VIP("shared", "web/api"); ok {
		t.Error("a purged app keeps its VIP on an external network")
	}
}

// TestNetPoolFromClusterSetting: a cluster bootstrapped with its own
// address pool allocates from it.
func TestNetPoolFromClusterSetting(t *testing.T) {
	h := newHarness(t)
	h.mustApply(InitCluster{Cluster: &types.Cluster{ID: "c1", AddressPool: "10.50.0.0/16"}})
	h.mustApply(CreateNetwork{Name: "shared", Now: t0})
	h.mustApply(UpsertApp{App: netApp(), Now: t0})
	subnet, ok := h.store.View().Pool().Subnet("web_front")
	if !ok || !netip.MustParsePrefix("10.50.0.0/16").Overlaps(subnet) {
		t.Fatalf("subnet %s (%v), want one of 10.50.0.0/16", subnet, ok)
	}
}

// TestMeshNetworksHaveASliceOnEveryNode: a network whose service publishes
// a port through the routing mesh has a slice on every node, tasks or not
// (each node's mesh dials replicas over it), also on a node that registers
// later; one published only in host mode or with x-berth-mesh: local does
// not.
func TestMeshNetworksHaveASliceOnEveryNode(t *testing.T) {
	cases := []struct {
		name string
		port types.Port
		mesh string
		want int // nodes with a slice of web_front before any placement
	}{
		{"ingress", types.Port{Target: 80, Published: 8080, Protocol: "tcp"}, "", 3},
		{"host mode", types.Port{Target: 80, Published: 8080, Protocol: "tcp", Mode: types.PortHost}, "", 0},
		{"x-berth-mesh: local", types.Port{Target: 80, Published: 8080, Protocol: "tcp"}, types.MeshLocal, 0},
		{"not published", types.Port{Target: 80, Protocol: "tcp"}, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustApply(UpsertNode{Node: testNode("n1")})
			h.mustApply(UpsertNode{Node: testNode("n2")})
			app := netApp()
			app.Services[0].Ports = []types.Port{tc.port}
			app.Services[0].Mesh = tc.mesh
			h.mustApply(CreateNetwork{Name: "shared", Now: t0})
			h.mustApply(UpsertApp{App: app, Now: t0})
			h.mustApply(UpsertNode{Node: testNode("n3")})
			p := h.store.View().Pool()
			if s := p.Slices("web_front"); len(s) != tc.want {
				t.Errorf("web_front slices %v, want %d nodes'", s, tc.want)
			}
			if tc.want > 0 {
				if s := p.Slices("web_back"); len(s) != tc.want {
					t.Errorf("web_back slices %v: the publishing service's every network, want %d nodes'", s, tc.want)
				}
			}
		})
	}
}
