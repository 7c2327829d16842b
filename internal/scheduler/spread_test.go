package scheduler

import (
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// TestSpreadIgnoresTasksBeingReplaced checks that a replacement is spread
// over where the service will run, not where it ran: a task told to shut
// down, or running on a node being drained, still holds its node's
// resources but no longer counts in its zone. Zone b's nodes have the lower
// IDs, so counting the leaving task would tie the zones and send the
// replacement to n1 (zone b), ending 3/1.
func TestSpreadIgnoresTasksBeingReplaced(t *testing.T) {
	svc := service("web", spread("node.labels.zone"))
	tests := []struct {
		name    string
		leaving func(tk *types.Task, n *types.Node)
		want    []string // acceptable nodes: zone a
	}{
		{"desired shutdown", func(tk *types.Task, _ *types.Node) { tk.DesiredState = types.DesiredShutdown }, []string{"n3", "n4"}},
		{"on a drained node", func(_ *types.Task, n *types.Node) { drained(n) }, []string{"n4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nodes := []*types.Node{
				node("n1", labels("zone", "b")), node("n2", labels("zone", "b")),
				node("n3", labels("zone", "a")), node("n4", labels("zone", "a")),
			}
			existing := []*types.Task{
				running("old1", svc, "n1"), running("old2", svc, "n2"),
				running("old3", svc, "n3"), running("old4", svc, "n4"),
			}
			tc.leaving(existing[2], nodes[2])
			c := NewCluster(nodes, existing, servicesOf(svc))
			plan := c.Place(requests(svc, 1))
			if len(plan.Placements) != 1 {
				t.Fatalf("plan = %+v, want one placement", plan)
			}
			got := plan.Placements[0].NodeID
			ok := false
			for _, w := range tc.want {
				ok = ok || got == w
			}
			if !ok {
				t.Fatalf("replacement went to %s, want one of %v (zone a)", got, tc.want)
			}
		})
	}
}

// TestLeavingTaskStillHoldsItsPort checks that a task on its way out keeps
// its host port and resources until it has stopped: only the spread forgets
// it.
func TestLeavingTaskStillHoldsItsPort(t *testing.T) {
	svc := service("web", publish(8080, "tcp", ""))
	old := running("old", svc, "n1")
	old.DesiredState = types.DesiredShutdown
	c := NewCluster([]*types.Node{node("n1")}, []*types.Task{old}, servicesOf(svc))
	plan := c.Place(requests(svc, 1))
	if len(plan.Placements) != 0 {
		t.Fatalf("plan = %+v, want the port still held by the stopping task", plan)
	}
}
