package state

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/ipam"
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

// TestExhaustedNetworkFailsOnlyItsTasks: a plan whose placements need
// more node slices than a network has places every task it can, and leaves
// only those whose node got no slice pending, with the reason and the
// setting to change; a later plan for a node that has a slice places too.
func TestExhaustedNetworkFailsOnlyItsTasks(t *testing.T) {
	h := newHarness(t)
	// A /23 pool of /24 networks that cannot grow, /25 slices: the VIPs
	// take one, so each network has room for one node.
	h.mustApply(InitCluster{Cluster: &types.Cluster{ID: "c1", AddressPool: "10.50.0.0/23", AddressSlice: 25}})
	app := testApp()
	app.Services[0].Replicas = 3
	app.Services[0].Networks = []types.NetworkAttachment{{Name: "default"}}
	h.mustApply(UpsertApp{App: app, Now: t0})
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("a1", "api", 1), testTask("a2", "api", 2), testTask("a3", "api", 3), testTask("d1", "db", 1)}, Now: t0})
	h.mustApply(TaskUpdates{Assign: []Assignment{
		{TaskID: "a1", NodeID: "n1"}, {TaskID: "a2", NodeID: "n2"}, {TaskID: "d1", NodeID: "n2"}, {TaskID: "a3", NodeID: "n1"},
	}, Now: t0})
	v := h.store.View()
	for _, want := range []struct {
		id, node string
		state    types.TaskState
	}{{"a1", "n1", types.TaskAssigned}, {"a2", "", types.TaskPending}, {"d1", "n2", types.TaskAssigned}, {"a3", "n1", types.TaskAssigned}} {
		got := v.Task(want.id)
		if got.State != want.state || got.NodeID != want.node {
			t.Errorf("task %s: %s on %q, want %s on %q (reason %q)", want.id, got.State, got.NodeID, want.state, want.node, got.PendingReason)
		}
	}
	reason := v.Task("a2").PendingReason
	for _, part := range []string{"no address for the task", "network web_default (10.50.0.0/24) has no free slice for node n2", "--address-slice"} {
		if !strings.Contains(reason, part) {
			t.Errorf("reason %q does not say %q", reason, part)
		}
	}
	if s := v.Pool().Slices("web_default"); len(s) != 1 {
		t.Errorf("slices %v, want n1's only", s)
	}
	// The refusal is written once: the same plan again changes nothing.
	before := h.store.View().Task("a2").ModifyIndex
	h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "a2", NodeID: "n2"}}, Now: t0})
	if after := h.store.View().Task("a2").ModifyIndex; after != before {
		t.Errorf("a refused placement rewrote the task (index %d to %d)", before, after)
	}
	h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "a2", NodeID: "n1"}}, Now: t0})
	if got := h.store.View().Task("a2"); got.State != types.TaskAssigned || got.PendingReason != "" {
		t.Errorf("a2 on n1, which has a slice: %s, reason %q", got.State, got.PendingReason)
	}
}

// TestFirstVersionSnapshotLoads restores a snapshot whose pool the first
// version wrote (/18 networks of /24 slices, no growth fields) and checks
// the restored cluster allocates on that plan, not the new default.
func TestFirstVersionSnapshotLoads(t *testing.T) {
	const snap = `{"format":"berth-state-v1"}
{"net_pool":{"id":"pool","pool":{"config":{"pool":"10.240.0.0/12","network_bits":18,"slice_bits":24},"nets":{"owners":{"web_back":0},"next":1},"networks":{"web_back":{"slices":{"owners":{"n1":1}},"vips":{"owners":{"web/api":1},"next":2}}}}}}
`
	h := newHarness(t)
	if err := h.fsm.Restore(ioNopCloser(stringsReader(snap))); err != nil {
		t.Fatal(err)
	}
	p := h.store.View().Pool()
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	if p.Config != ipam.V1Config() {
		t.Fatalf("config %+v, want the first version's", p.Config)
	}
	if s, _ := p.Slice("web_back", "n1"); s.String() != "10.240.1.0/24" {
		t.Errorf("n1's slice %s, want 10.240.1.0/24", s)
	}
	if v, _ := p.VIP("web_back", "web/api"); v.String() != "10.240.0.1" {
		t.Errorf("VIP %s, want 10.240.0.1", v)
	}
	h.mustApply(CreateNetwork{Name: "shared", Now: t0})
	if s, _ := h.store.View().Pool().Subnet("shared"); s.String() != "10.240.64.0/18" {
		t.Errorf("a new network's subnet %s, want the first version's next /18, 10.240.64.0/18", s)
	}
}

// BenchmarkPlaceOn10kNodes measures the FSM applying one plan entry that
// places a task of a networked service on each of 10,000 nodes, the first
// on each (so each takes a new slice: 127 wide, the rest small, and the
// network grows from a /20 to a /13), then the same again on nodes that hold their slice: the cost of
// address allocation at placement, per task.
//
//	go test -run '^$' -bench PlaceOn10kNodes -benchtime 3x ./internal/state
func BenchmarkPlaceOn10kNodes(b *testing.B) {
	const nodes = 10000
	for _, tc := range []struct {
		name  string
		fresh bool
	}{{"new slices", true}, {"slices held", false}} {
		b.Run(tc.name, func(b *testing.B) {
			var took time.Duration
			for b.Loop() {
				b.StopTimer()
				h := newHarness(b)
				app := testApp()
				app.Services[0].Replicas = 2 * nodes
				app.Services[0].Networks = []types.NetworkAttachment{{Name: "default"}}
				h.mustApply(UpsertApp{App: app, Now: t0})
				var create []*types.Task
				var first, second []Assignment
				for i := range nodes {
					a, c := fmt.Sprintf("a%05d", i), fmt.Sprintf("b%05d", i)
					create = append(create, testTask(a, "api", i+1), testTask(c, "api", nodes+i+1))
					first = append(first, Assignment{TaskID: a, NodeID: fmt.Sprintf("n%05d", i)})
					second = append(second, Assignment{TaskID: c, NodeID: fmt.Sprintf("n%05d", i)})
				}
				h.mustApply(TaskUpdates{Create: create, Now: t0})
				if !tc.fresh {
					h.mustApply(TaskUpdates{Assign: first, Now: t0})
					first = second
				}
				b.StartTimer()
				start := time.Now()
				h.mustApply(TaskUpdates{Assign: first, Now: t0})
				took += time.Since(start)
				if s := h.store.View().Pool().Slices("web_default"); len(s) != nodes {
					b.Fatalf("%d slices, want %d", len(s), nodes)
				}
			}
			b.ReportMetric(float64(took.Nanoseconds())/float64(b.N*nodes), "ns/task")
		})
	}
}

// TestNodeWorkWakesForItsOwnSlicesOnly: a node that takes its first slice
// of a network (with its first task there) wakes its own agent's query,
// whose answer names the slice, and not another node's agent, though the
// pool changed: at 1,000 nodes each such slice woke every agent.
func TestNodeWorkWakesForItsOwnSlicesOnly(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertNode{Node: testNode("n1")})
	h.mustApply(UpsertNode{Node: testNode("n2")})
	h.mustApply(CreateNetwork{Name: "shared", Now: t0})
	h.mustApply(UpsertApp{App: netApp(), Now: t0})
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("a1", "api", 1), testTask("d1", "db", 1)}, Now: t0})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, st := range []struct {
		name, task, node string
	}{{"n1's first slices", "a1", "n1"}, {"n2's first slice", "d1", "n2"}} {
		t.Run(st.name, func(t *testing.T) {
			before := h.store.View()
			pool := before.Pool().Clone()
			h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: st.task, NodeID: st.node}}, Now: t0})
			if jsonEqual(pool, h.store.View().Pool()) {
				t.Fatal("the placement took no slice; the test proves nothing")
			}
			for _, n := range []string{"n1", "n2"} {
				keys := NodeWork(n)
				short, done := context.WithTimeout(ctx, 200*time.Millisecond)
				idx, err := h.store.WaitForChange(short, keys, before.Index(keys...))
				done()
				if woken := err == nil; woken != (n == st.node) {
					t.Errorf("%s's query woke: %v (index %d), want %v", n, woken, idx, n == st.node)
				}
			}
			if _, ok := h.store.View().Pool().Slice("web_back", st.node); !ok {
				t.Errorf("%s has no slice of web_back", st.node)
			}
		})
	}
}
