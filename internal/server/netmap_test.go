package server

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// applyAll runs commands through a fresh store's FSM, as Raft would.
func applyAll(t *testing.T, cmds ...state.Command) *state.Store {
	t.Helper()
	st, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	fsm := state.NewFSM(st, nil)
	for i, c := range cmds {
		b, err := state.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if err, ok := fsm.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: b}).(error); ok {
			t.Fatalf("apply %T: %v", c, err)
		}
	}
	return st
}

// TestNetMap: the map names every network with its slices, every node
// with its underlay, and per service its VIP and only its serving
// replicas (running, healthy, not told to stop).
func TestNetMap(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	app := validApp()
	app.Services[0].Healthcheck = &types.Healthcheck{Test: []string{"CMD", "true"}}
	task := func(id string, slot int, node string) *types.Task {
		return &types.Task{ID: id, App: "shop", Service: "web", Slot: slot, ServiceVersion: 1}
	}
	running := func(id, addr string, h types.Health) types.TaskStatus {
		return types.TaskStatus{TaskID: id, State: types.TaskRunning, Health: h, Addresses: map[string]string{"shop_default": addr}}
	}
	cmds := []state.Command{
		&state.UpsertNode{Node: &types.Node{ID: "n1", Name: "a1", Address: "10.213.0.11:7701", Status: types.NodeReady}},
		&state.UpsertNode{Node: &types.Node{ID: "n2", Name: "a2", Address: "agent2.example:7701", Status: types.NodeReady}},
		&state.UpsertApp{App: app, Now: now},
		&state.TaskUpdates{Create: []*types.Task{task("t1", 1, ""), task("t2", 2, ""), task("t3", 3, "")}, Now: now},
		&state.TaskUpdates{Assign: []state.Assignment{{TaskID: "t1", NodeID: "n1"}, {TaskID: "t2", NodeID: "n2"}, {TaskID: "t3", NodeID: "n2"}}, Now: now},
		&state.TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{running("t1", "10.240.1.2", types.HealthHealthy)}, Now: now},
		&state.TaskStatusUpdate{NodeID: "n2", Statuses: []types.TaskStatus{running("t2", "10.240.2.2", types.HealthStarting), running("t3", "10.240.2.3", types.HealthHealthy)}, Now: now},
		&state.TaskUpdates{Desired: map[string]types.TaskState{"t3": types.DesiredShutdown}, Now: now},
	}
	st := applyAll(t, cmds...)
	m := buildNetMap(st.View())

	if len(m.Networks) != 1 || m.Networks[0].Key != "shop_default" || m.Networks[0].App != "shop" || len(m.Networks[0].Slices) != 2 {
		t.Fatalf("networks %+v, want shop_default with a slice on each node", m.Networks)
	}
	under := map[string]string{}
	for _, n := range m.Nodes {
		under[n.ID] = n.Underlay
	}
	if under["n1"] != "10.213.0.11" || under["n2"] != "" {
		t.Errorf("underlays %v: want n1's address, and none for a name", under)
	}
	var web *struct{ vip, eps string }
	for _, s := range m.Services {
		if s.Name != "web" {
			continue
		}
		eps := ""
		for _, e := range s.Endpoints {
			eps += e.TaskID + "=" + e.Addresses["shop_default"] + " "
		}
		web = &struct{ vip, eps string }{s.Networks[0].VIP, eps}
		if len(s.Ports) != 1 || s.Ports[0].Published != 8080 {
			t.Errorf("ports %+v", s.Ports)
		}
	}
	if web == nil {
		t.Fatal("web is not in the map")
	}
	if web.vip != "10.240.0.1" {
		t.Errorf("web's VIP %q, want the first of slice 0", web.vip)
	}
	if web.eps != "t1=10.240.1.2 " {
		t.Errorf("endpoints %q, want only t1 (t2 is not healthy yet, t3 is stopping)", web.eps)
	}

	// A replica of the version before, which had no health check, serves
	// through a rollout to one that adds it.
	old := &types.Task{ID: "t0", App: "shop", Service: "web", Slot: 4, ServiceVersion: 0}
	st = applyAll(t, append(cmds,
		&state.TaskUpdates{Create: []*types.Task{old}, Now: now},
		&state.TaskUpdates{Assign: []state.Assignment{{TaskID: "t0", NodeID: "n1"}}, Now: now},
		&state.TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{running("t0", "10.240.1.9", types.HealthNone)}, Now: now},
	)...)
	if got := servingTasks(st.View())["shop/web"]; len(got) != 2 {
		t.Errorf("serving %d tasks, want t1 and the old version's t0", len(got))
	}
}

// TestIngressPortsAreTheClusters: a port another app publishes is refused
// when either side is the mesh's; two host-mode ports may share it, and an
// app may republish its own.
func TestIngressPortsAreTheClusters(t *testing.T) {
	withPort := func(name string, mode string) *types.App {
		return &types.App{Name: name, Services: []*types.Service{{Name: "web", Ports: []types.Port{{Target: 80, Published: 8080, Protocol: "tcp", Mode: mode}}}}}
	}
	cases := []struct {
		name       string
		other, app *types.App
		refused    bool
	}{
		{"ingress and ingress", withPort("a", types.PortIngress), withPort("b", types.PortIngress), true},
		{"host then ingress", withPort("a", types.PortHost), withPort("b", types.PortIngress), true},
		{"ingress then host", withPort("a", types.PortIngress), withPort("b", types.PortHost), true},
		{"host and host", withPort("a", types.PortHost), withPort("b", types.PortHost), false},
		{"the same app again", withPort("a", types.PortIngress), withPort("a", types.PortIngress), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkIngressPorts([]*types.App{c.other}, c.app)
			if (err != nil) != c.refused {
				t.Fatalf("err = %v, refused want %v", err, c.refused)
			}
			if err != nil && !strings.Contains(err.Error(), "app a") {
				t.Errorf("error %q does not name the app that has the port", err)
			}
		})
	}
}
