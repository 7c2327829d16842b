package scheduler

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

func TestSpreadReplicas(t *testing.T) {
	nodes := []*types.Node{node("n1"), node("n2"), node("n3")}
	svc := service("web")
	plan := NewCluster(nodes, nil, nil).Place(requests(svc, 5))
	want := map[string]int{"n1": 2, "n2": 2, "n3": 1}
	if got := perNode(plan); !reflect.DeepEqual(got, want) || len(plan.Failures) != 0 {
		t.Fatalf("placements per node = %v (failures %v), want %v", got, plan.Failures, want)
	}
}

// TestLeastLoaded checks the order of the tie breakers after the spread of
// the service itself: fewest tasks, then least memory reserved, then ID.
func TestLeastLoaded(t *testing.T) {
	busy, big := service("busy"), service("big", reserve(0, gib))
	nodes := []*types.Node{node("n1"), node("n2"), node("n3"), node("n4")}
	existing := []*types.Task{
		running("b1", busy, "n1"), running("b2", busy, "n1"),
		running("b3", busy, "n2"),
		running("g1", big, "n3"),
	}
	c := NewCluster(nodes, existing, servicesOf(busy, big))
	plan := c.Place(requests(service("web"), 4))
	got := []string{}
	for _, p := range plan.Placements {
		got = append(got, p.NodeID)
	}
	// n4 is empty; n2 and n3 hold one task each, n2 with less memory; n1 two.
	want := []string{"n4", "n2", "n3", "n1"}
	if !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
}

func TestPreferencesSpreadOverZones(t *testing.T) {
	zone := func(z string) func(*types.Node) { return labels("zone", z) }
	nodes := []*types.Node{
		node("a1", zone("a")), node("a2", zone("a")), node("a3", zone("a")), node("a4", zone("a")),
		node("b1", zone("b")), node("c1", zone("c")),
	}
	svc := service("web", spread("node.labels.zone"))
	plan := NewCluster(nodes, nil, nil).Place(requests(svc, 6))
	zones := map[string]int{}
	for _, p := range plan.Placements {
		zones[p.NodeID[:1]]++
	}
	if want := map[string]int{"a": 2, "b": 2, "c": 2}; !reflect.DeepEqual(zones, want) {
		t.Fatalf("tasks per zone = %v, want %v (plan %+v)", zones, want, plan)
	}
	// Within zone a the node spread still applies: two different nodes.
	if got := perNode(plan); got["a1"] != 1 || got["a2"] != 1 {
		t.Fatalf("zone a placements = %v, want one on a1 and one on a2", got)
	}
}

// TestPreferencesCountExistingTasks checks that groups count tasks already
// running, including on nodes that can no longer take new ones (here a
// constraint excludes a2). Tasks being replaced are another matter: see
// TestSpreadIgnoresTasksBeingReplaced.
func TestPreferencesCountExistingTasks(t *testing.T) {
	svc := service("web", spread("spread=node.labels.zone"), constraints("node.hostname!=host-a2"))
	nodes := []*types.Node{
		node("a1", labels("zone", "a")), node("a2", labels("zone", "a")),
		node("b1", labels("zone", "b")), node("x1"), // x1 has no zone: the "" group
	}
	existing := []*types.Task{running("w1", svc, "a2"), running("w2", svc, "b1")}
	plan := NewCluster(nodes, existing, servicesOf(svc)).Place(requests(svc, 3))
	got := []string{}
	for _, p := range plan.Placements {
		got = append(got, p.NodeID)
	}
	// "" has 0, then a (1 on a2, a1 is emptier than b1 on ties), then b.
	if want := []string{"x1", "a1", "b1"}; !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
}

func TestNestedPreferences(t *testing.T) {
	n := func(id, zone, rack string) *types.Node { return node(id, labels("zone", zone, "rack", rack)) }
	nodes := []*types.Node{n("a1", "a", "r1"), n("a2", "a", "r1"), n("a3", "a", "r2"), n("b1", "b", "r3")}
	svc := service("web", spread("node.labels.zone", "node.labels.rack"))
	plan := NewCluster(nodes, nil, nil).Place(requests(svc, 4))
	// Zones alternate a, b; within a, racks r1 and r2 alternate.
	want := map[string]int{"a1": 1, "a3": 1, "b1": 2}
	if got := perNode(plan); !reflect.DeepEqual(got, want) {
		t.Fatalf("placements = %v, want %v", got, want)
	}
}

func TestPublishedPortsNeverShareANode(t *testing.T) {
	web := service("web", publish(8080, "tcp", ""))
	plan := NewCluster([]*types.Node{node("n1")}, nil, nil).Place(requests(web, 3))
	if len(plan.Placements) != 1 || len(plan.Failures) != 2 {
		t.Fatalf("plan = %+v, want 1 placement and 2 failures", plan)
	}
	for _, f := range plan.Failures {
		if want := "0/1 nodes available: 1 port 8080/tcp in use"; f.Reason != want {
			t.Fatalf("reason = %q, want %q", f.Reason, want)
		}
	}

	api := service("api", publish(8080, "tcp", ""))
	two := []*types.Node{node("n1"), node("n2")}
	plan = NewCluster(two, nil, nil).Place(append(requests(web, 1), requests(api, 1)...))
	if got := perNode(plan); got["n1"] != 1 || got["n2"] != 1 {
		t.Fatalf("placements = %v, want the two services on different nodes", got)
	}
}

// TestIngressPortsOnMeshNodes: on a node whose agent serves the mesh, an
// ingress port binds nothing, so replicas share the node; a host-mode port
// still binds it.
func TestIngressPortsOnMeshNodes(t *testing.T) {
	mesh := func(n *types.Node) { n.Overlay = true }
	web := service("web", publish(8080, "tcp", ""))
	plan := NewCluster([]*types.Node{node("n1", mesh)}, nil, nil).Place(requests(web, 3))
	if len(plan.Placements) != 3 {
		t.Fatalf("plan = %+v, want the 3 replicas on the mesh node", plan)
	}
	host := service("api", publish(9090, "tcp", ""), func(s *types.Service) { s.Ports[0].Mode = types.PortHost })
	plan = NewCluster([]*types.Node{node("n1", mesh)}, nil, nil).Place(requests(host, 2))
	if len(plan.Placements) != 1 || len(plan.Failures) != 1 {
		t.Fatalf("plan = %+v, want a host-mode port to bind the node", plan)
	}
}

func TestResourcesAreAccountedWithinAPlan(t *testing.T) {
	svc := service("web", reserve(cpu, gib))
	nodes := []*types.Node{node("n1", capacity(2*cpu, 8*gib)), node("n2", capacity(8*cpu, 2*gib))}
	plan := NewCluster(nodes, nil, nil).Place(requests(svc, 5))
	if got := perNode(plan); got["n1"] != 2 || got["n2"] != 2 {
		t.Fatalf("placements = %v, want 2 per node", got)
	}
	want := "0/2 nodes available: 1 insufficient cpu, 1 insufficient memory"
	if len(plan.Failures) != 1 || plan.Failures[0].Reason != want {
		t.Fatalf("failures = %+v, want one with %q", plan.Failures, want)
	}
}

func TestMaxReplicasPerNode(t *testing.T) {
	svc := service("web", maxPerNode(2))
	plan := NewCluster([]*types.Node{node("n1"), node("n2")}, nil, nil).Place(requests(svc, 5))
	if got := perNode(plan); got["n1"] != 2 || got["n2"] != 2 {
		t.Fatalf("placements = %v, want 2 per node", got)
	}
	want := "0/2 nodes available: 2 max replicas per node (2)"
	if len(plan.Failures) != 1 || plan.Failures[0].Reason != want {
		t.Fatalf("failures = %+v, want one with %q", plan.Failures, want)
	}
}

func TestPinnedTasks(t *testing.T) {
	svc := service("agent", reserve(0, gib))
	c := NewCluster([]*types.Node{node("n1"), node("n2", drained), node("n3", capacity(0, gib/2))}, nil, nil)
	reqs := requests(svc, 4)
	for i, id := range []string{"n1", "n2", "n3", "gone"} {
		reqs[i].Task.NodeID = id
	}
	plan := c.Place(reqs)
	if want := []Placement{{"agent-1", "n1"}}; !reflect.DeepEqual(plan.Placements, want) {
		t.Fatalf("placements = %+v, want %+v", plan.Placements, want)
	}
	want := []Failure{
		{"agent-2", "node n2: drained"},
		{"agent-3", "node n3: insufficient memory"},
		{"agent-4", "node gone: not in the cluster"},
	}
	if !reflect.DeepEqual(plan.Failures, want) {
		t.Fatalf("failures = %+v\nwant       %+v", plan.Failures, want)
	}
}

func TestNewClusterCountsOnlyTasksHoldingResources(t *testing.T) {
	big := service("big", reserve(0, gib), publish(80, "tcp", ""))
	task := func(id string, state types.TaskState, nodeID string) *types.Task {
		tk := running(id, big, nodeID)
		tk.State = state
		return tk
	}
	existing := []*types.Task{
		task("pending", types.TaskPending, "n1"),
		task("failed", types.TaskFailed, "n1"),
		task("shutdown", types.TaskShutdown, "n1"),
		task("elsewhere", types.TaskRunning, "unknown-node"),
		task("unplaced", types.TaskAssigned, ""),
	}
	c := NewCluster([]*types.Node{node("n1", capacity(0, gib))}, existing, servicesOf(big))
	if err := c.Assign(requests(big, 1)[0], "n1"); err != nil {
		t.Fatalf("Assign on a node holding nothing: %v", err)
	}

	// A task whose service is gone still counts as a task but reserves nothing.
	orphan := &types.Task{ID: "o", App: "app", Service: "gone", NodeID: "n1", State: types.TaskStarting}
	c = NewCluster([]*types.Node{node("n1"), node("n2")}, []*types.Task{orphan}, nil)
	if p := c.Place(requests(service("web"), 1)); p.Placements[0].NodeID != "n2" {
		t.Fatalf("placed on %s, want n2 (n1 runs the orphan)", p.Placements[0].NodeID)
	}
}

func TestAlreadyPlacedTaskIsRefused(t *testing.T) {
	svc := service("web")
	req := requests(svc, 1)[0]
	c := NewCluster([]*types.Node{node("n1")}, []*types.Task{running(req.Task.ID, svc, "n1")}, servicesOf(svc))
	plan := c.Place([]Request{req})
	if len(plan.Failures) != 1 || plan.Failures[0].Reason != "the task already holds resources on node n1" {
		t.Fatalf("plan = %+v, want the task refused", plan)
	}
}

func TestAssign(t *testing.T) {
	svc := service("web", reserve(0, gib), publish(8080, "tcp", ""))
	c := NewCluster([]*types.Node{node("n1", capacity(0, 2*gib)), node("n2")}, nil, nil)
	reqs := requests(svc, 4)
	pinned := requests(service("agent"), 1)[0]
	pinned.Task.NodeID = "n1"

	tests := []struct {
		name   string
		req    Request
		node   string
		target error
		reason string
	}{
		{name: "fits", req: reqs[0], node: "n1"},
		{name: "port now taken", req: reqs[1], node: "n1", target: ErrInfeasible, reason: "port 8080/tcp in use"},
		{name: "same task twice", req: reqs[0], node: "n2", target: ErrInfeasible,
			reason: "the task already holds resources on node n1"},
		{name: "unknown node", req: reqs[2], node: "n9", target: ErrNodeNotFound},
		{name: "bound elsewhere", req: pinned, node: "n2", target: ErrInfeasible, reason: "the task is bound to node n1"},
		{name: "no service", req: Request{Task: reqs[3].Task}, node: "n2", target: ErrInfeasible,
			reason: "the request has no service spec"},
		{name: "fits elsewhere", req: reqs[1], node: "n2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Assign(tt.req, tt.node)
			if !errors.Is(err, tt.target) || (tt.target == nil) != (err == nil) {
				t.Fatalf("Assign = %v, want %v", err, tt.target)
			}
			var ie *InfeasibleError
			if tt.reason != "" && (!errors.As(err, &ie) || ie.Reason != tt.reason) {
				t.Fatalf("Assign = %v, want reason %q", err, tt.reason)
			}
		})
	}
	// What Assign accounted is seen by Place: n1 has 1 GiB left and its port taken.
	plan := c.Place([]Request{{Task: reqs[2].Task, Service: service("web", reserve(0, gib))}})
	if len(plan.Placements) != 1 || plan.Placements[0].NodeID != "n1" {
		t.Fatalf("plan = %+v, want the port-free task on n1 (fewest web tasks tie, n1 first)", plan)
	}
	plan = c.Place(requests(service("big", reserve(0, gib)), 1))
	if len(plan.Placements) != 1 || plan.Placements[0].NodeID != "n2" {
		t.Fatalf("plan = %+v, want n2: n1 is full", plan)
	}
}

func TestEligibleNodes(t *testing.T) {
	nodes := []*types.Node{
		node("n3", labels("zone", "a")), node("n1", labels("zone", "a")),
		node("n2", labels("zone", "b")), node("n4", labels("zone", "a"), down),
		node("n5", labels("zone", "a"), drained), node("n6", labels("zone", "a"), dockerOnly),
		node("n7", labels("zone", "a"), capacity(1, 1)),
	}
	c := NewCluster(nodes, nil, nil)
	tests := []struct {
		svc  *types.Service
		want []string
	}{
		{service("s", constraints("node.labels.zone==a"), driver("exec"), reserve(cpu, gib)), []string{"n1", "n3", "n7"}},
		{service("s"), []string{"n1", "n2", "n3", "n6", "n7"}},
		{service("s", constraints("bogus")), nil},
	}
	for _, tt := range tests {
		if got := c.EligibleNodes(tt.svc); !slices.Equal(got, tt.want) {
			t.Errorf("EligibleNodes(%v) = %v, want %v", tt.svc.Placement.Constraints, got, tt.want)
		}
	}
}

// TestDeterministic checks that the order of the inputs does not change the
// plan.
func TestDeterministic(t *testing.T) {
	var nodes []*types.Node
	for _, id := range []string{"n1", "n2", "n3", "n4", "n5", "n6"} {
		nodes = append(nodes, node(id, labels("zone", id[1:]), capacity(4*cpu, 4*gib)))
	}
	svcs := []*types.Service{
		service("a", reserve(cpu, gib)),
		service("b", spread("node.labels.zone"), publish(80, "tcp", "")),
		service("c", maxPerNode(1), reserve(0, 3*gib)),
	}
	var reqs []Request
	for _, s := range svcs {
		reqs = append(reqs, requests(s, 7)...)
	}
	want := NewCluster(nodes, nil, nil).Place(reqs)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(nodes)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := NewCluster(shuffled, nil, nil).Place(reqs); !reflect.DeepEqual(got, want) {
			t.Fatalf("plan with shuffled nodes =\n%+v\nwant\n%+v", got, want)
		}
	}
}
