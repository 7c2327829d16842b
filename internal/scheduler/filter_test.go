package scheduler

import (
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// TestPlaceOne checks each filter, the constraint forms and the pending
// reasons through one placement of a fresh task.
func TestPlaceOne(t *testing.T) {
	web := service("web", publish(8080, "tcp", ""))
	other := service("other", reserve(0, 3*gib), publish(8080, "tcp", "127.0.0.1"))
	tests := []struct {
		name     string
		nodes    []*types.Node
		existing []*types.Task
		svc      *types.Service
		wantNode string
		reason   string
	}{
		{name: "no nodes", svc: service("s"), reason: "no nodes in the cluster"},
		{name: "not ready", nodes: []*types.Node{node("n1", down), node("n2", down)},
			svc: service("s"), reason: "0/2 nodes available: 2 not ready"},
		{name: "drained", nodes: []*types.Node{node("n1", drained), node("n2")},
			svc: service("s"), wantNode: "n2"},
		{name: "all drained", nodes: []*types.Node{node("n1", drained)},
			svc: service("s"), reason: "0/1 nodes available: 1 drained"},
		{name: "no driver", nodes: []*types.Node{node("n1", dockerOnly), node("n2", dockerOnly)},
			svc: service("s", driver("exec")), reason: "0/2 nodes available: 2 no driver exec"},
		{name: "empty driver means docker", nodes: []*types.Node{node("n1", dockerOnly)},
			svc: service("s"), wantNode: "n1"},
		{name: "constraint and memory, most frequent first",
			nodes: []*types.Node{
				node("a1", labels("zone", "a")), node("a2", labels("zone", "a")), node("a3", labels("zone", "a")),
				node("b1", labels("zone", "b"), capacity(0, gib)), node("b2", labels("zone", "b"), capacity(0, gib)),
			},
			svc:    service("s", constraints("node.labels.zone==b"), reserve(0, 2*gib)),
			reason: "0/5 nodes available: 3 constraint node.labels.zone==b, 2 insufficient memory"},
		{name: "ties keep pipeline order",
			nodes:  []*types.Node{node("n1", capacity(cpu, 0)), node("n2", down)},
			svc:    service("s", reserve(2*cpu, 0)),
			reason: "0/2 nodes available: 1 not ready, 1 insufficient cpu"},
		{name: "memory counts what is reserved", nodes: []*types.Node{node("n1", capacity(0, 4*gib))},
			existing: []*types.Task{running("o1", other, "n1")},
			svc:      service("s", reserve(0, 2*gib)),
			reason:   "0/1 nodes available: 1 insufficient memory"},
		{name: "zero capacity is unlimited", nodes: []*types.Node{node("n1")},
			svc: service("s", reserve(64*cpu, 1024*gib)), wantNode: "n1"},
		{name: "constraint spaces and !=", nodes: []*types.Node{node("n1", labels("zone", "a")), node("n2")},
			svc: service("s", constraints("node.labels.zone != a")), wantNode: "n2"},
		{name: "hostname folds case", nodes: []*types.Node{node("n1"), node("n2")},
			svc: service("s", constraints("node.hostname==HOST-n2")), wantNode: "n2"},
		{name: "role", nodes: []*types.Node{node("n1"), node("n2", manager)},
			svc: service("s", constraints("node.role==manager")), wantNode: "n2"},
		{name: "id", nodes: []*types.Node{node("n1"), node("n2")},
			svc: service("s", constraints("node.id!=n1")), wantNode: "n2"},
		{name: "missing label never equals", nodes: []*types.Node{node("n1")},
			svc:    service("s", constraints("node.labels.zone==")),
			reason: "0/1 nodes available: 1 constraint node.labels.zone=="},
		{name: "bad constraint syntax", nodes: []*types.Node{node("n1")},
			svc:    service("s", constraints("node.labels.zone=a")),
			reason: `placement constraint "node.labels.zone=a": want ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE`},
		{name: "unknown constraint attribute", nodes: []*types.Node{node("n1")},
			svc:    service("s", constraints("engine.labels.x==1")),
			reason: `placement constraint "engine.labels.x==1": unknown attribute "engine.labels.x" (use node.id, node.hostname, node.role or node.labels.KEY)`},
		{name: "bad preference", nodes: []*types.Node{node("n1")},
			svc:    service("s", spread("node.hostname")),
			reason: `placement preference "node.hostname": only spread over node.labels.KEY is supported`},
		{name: "port in use", nodes: []*types.Node{node("n1")},
			existing: []*types.Task{running("w0", web, "n1")},
			svc:      service("s", publish(9090, "udp", ""), publish(8080, "", "")),
			reason:   "0/1 nodes available: 1 port 8080/tcp in use"},
		{name: "other protocol is free", nodes: []*types.Node{node("n1")},
			existing: []*types.Task{running("w0", web, "n1")},
			svc:      service("s", publish(8080, "udp", "")), wantNode: "n1"},
		{name: "different host IPs share a port", nodes: []*types.Node{node("n1")},
			existing: []*types.Task{running("o1", other, "n1")},
			svc:      service("s", publish(8080, "tcp", "127.0.0.2")), wantNode: "n1"},
		{name: "wildcard clashes with a specific IP", nodes: []*types.Node{node("n1")},
			existing: []*types.Task{running("o1", other, "n1")},
			svc:      service("s", publish(8080, "tcp", "0.0.0.0")),
			reason:   "0/1 nodes available: 1 port 8080/tcp in use"},
		{name: "max replicas per node", nodes: []*types.Node{node("n1")},
			existing: []*types.Task{running("m1", service("m"), "n1"), running("m2", service("m"), "n1")},
			svc:      service("m", maxPerNode(2)),
			reason:   "0/1 nodes available: 1 max replicas per node (2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCluster(tt.nodes, tt.existing, servicesOf(web, other, service("m")))
			plan := c.Place(requests(tt.svc, 1))
			if tt.reason != "" {
				if len(plan.Placements) != 0 || len(plan.Failures) != 1 {
					t.Fatalf("plan = %+v, want one failure", plan)
				}
				if got := plan.Failures[0].Reason; got != tt.reason {
					t.Fatalf("reason = %q\nwant     %q", got, tt.reason)
				}
				return
			}
			if len(plan.Placements) != 1 || plan.Placements[0].NodeID != tt.wantNode {
				t.Fatalf("plan = %+v, want placement on %s", plan, tt.wantNode)
			}
		})
	}
}
