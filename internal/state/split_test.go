package state

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// Split bounds every entry and, applied in order, gives the store what the
// whole update gives.
func TestSplitTaskUpdates(t *testing.T) {
	for _, tc := range []struct {
		name             string
		creates, assigns int
		entries          int
	}{
		{"within bounds", 10, 10, 1},
		{"creates at the bound", maxCreatesPerEntry, 0, 1},
		{"many creates", 2*maxCreatesPerEntry + 5, 0, 3},
		{"many placements", 0, maxAssignsPerEntry + 2, 2},
		{"both", maxCreatesPerEntry + 1, maxAssignsPerEntry + 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole, parts := newHarness(t), newHarness(t)
			for _, h := range []*harness{whole, parts} {
				h.mustApply(UpsertApp{App: testApp(), Now: t0})
				h.mustApply(UpsertNode{Node: testNode("n1")})
				var old []*types.Task
				for i := range tc.assigns {
					old = append(old, testTask(fmt.Sprintf("old%d", i), "api", i+1))
				}
				old = append(old, testTask("stopping", "api", tc.assigns+1), testTask("gone", "api", tc.assigns+2))
				h.mustApply(TaskUpdates{Create: old, Now: t0})
			}
			u := &TaskUpdates{Pending: map[string]string{"new0": "waits for db"}, Desired: map[string]types.TaskState{"stopping": types.DesiredShutdown},
				Delete: []string{"gone"}, Now: t0}
			for i := range tc.creates {
				u.Create = append(u.Create, testTask(fmt.Sprintf("new%d", i), "api", 10_000+i))
			}
			for i := range tc.assigns {
				u.Assign = append(u.Assign, Assignment{TaskID: fmt.Sprintf("old%d", i), NodeID: "n1"})
			}
			if tc.creates == 0 {
				u.Pending = map[string]string{"old0": "no node fits"}
				u.Assign = u.Assign[1:]
			}
			got := u.Split()
			if len(got) != tc.entries {
				t.Fatalf("%d entries, want %d", len(got), tc.entries)
			}
			for i, e := range got {
				if len(e.Create) > maxCreatesPerEntry || len(e.Assign) > maxAssignsPerEntry {
					t.Errorf("entry %d: %d creations, %d placements", i, len(e.Create), len(e.Assign))
				}
				parts.mustApply(*e)
			}
			whole.mustApply(*u)
			if w, p := tasksOf(whole), tasksOf(parts); !reflect.DeepEqual(w, p) {
				t.Errorf("the parts give %d tasks unlike the whole's %d", len(p), len(w))
			}
		})
	}
}

// tasksOf is the store's tasks by ID, without the indexes that differ by
// how many entries made them.
func tasksOf(h *harness) map[string]types.Task {
	out := map[string]types.Task{}
	for _, t := range h.store.View().Tasks(TaskFilter{}) {
		c := *t
		c.CreateIndex, c.ModifyIndex = 0, 0
		out[t.ID] = c
	}
	return out
}

// A large plan's placements, spread round the nodes, are split with each
// node's together: a node's agent wakes for one or two entries, not for
// every one.
func TestSplitGroupsPlacementsByNode(t *testing.T) {
	const nodes, perNode = 8, 300 // three entries
	u := &TaskUpdates{Now: t0}
	for i := range perNode {
		for n := range nodes {
			u.Assign = append(u.Assign, Assignment{TaskID: fmt.Sprintf("t%d-%d", n, i), NodeID: fmt.Sprintf("n%d", n)})
		}
	}
	got := u.Split()
	entriesOf := map[string]int{}
	placed := map[string]bool{}
	for _, e := range got {
		in := map[string]bool{}
		last := map[string]int{}
		for _, a := range e.Assign {
			in[a.NodeID] = true
			placed[a.TaskID] = true
			var n, i int
			_, _ = fmt.Sscanf(a.TaskID, "t%d-%d", &n, &i)
			if prev, ok := last[a.NodeID]; ok && i < prev {
				t.Errorf("%s placed out of the plan's order", a.TaskID)
			}
			last[a.NodeID] = i
		}
		for n := range in {
			entriesOf[n]++
		}
	}
	if len(placed) != nodes*perNode {
		t.Fatalf("%d tasks placed, want %d", len(placed), nodes*perNode)
	}
	for n, k := range entriesOf {
		if k > 2 {
			t.Errorf("node %s is in %d entries of %d, want at most 2", n, k, len(got))
		}
	}
}
