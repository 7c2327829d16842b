package state

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

func TestNodeOperations(t *testing.T) {
	cases := []struct {
		name   string
		cmd    Command
		check  func(t *testing.T, n *types.Node)
		errIs  error
		errAny bool
	}{
		{"drain", &SetNodeAvailability{ID: "n1", Availability: types.AvailabilityDrain}, func(t *testing.T, n *types.Node) {
			if n.Availability != types.AvailabilityDrain {
				t.Errorf("availability %s", n.Availability)
			}
		}, nil, false},
		{"bad availability", &SetNodeAvailability{ID: "n1", Availability: "pause"}, nil, nil, true},
		{"drain unknown node", &SetNodeAvailability{ID: "nx", Availability: types.AvailabilityDrain}, nil, ErrNotFound, true},
		{"labels add and remove", &UpdateNodeLabels{ID: "n1", Add: map[string]string{"disk": "ssd"}, Remove: []string{"zone"}}, func(t *testing.T, n *types.Node) {
			if !maps.Equal(n.Labels, map[string]string{"disk": "ssd"}) {
				t.Errorf("labels %v", n.Labels)
			}
		}, nil, false},
		{"labels unknown node", &UpdateNodeLabels{ID: "nx", Add: map[string]string{"a": "b"}}, nil, ErrNotFound, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustApply(&UpsertNode{Node: testNode("n1")})
			before := h.store.View().Index(TableNodes)
			_, err := h.apply(tc.cmd)
			if tc.errAny {
				if err == nil || (tc.errIs != nil && !errors.Is(err, tc.errIs)) {
					t.Fatalf("err = %v, want an error (%v)", err, tc.errIs)
				}
				if h.store.View().Index(TableNodes) != before {
					t.Fatalf("a refused command changed the store")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, h.store.View().Node("n1"))
		})
	}
}

func TestOperatorLabelsSurviveReRegistration(t *testing.T) {
	h := newHarness(t)
	h.mustApply(&UpsertNode{Node: testNode("n1")})
	h.mustApply(&UpdateNodeLabels{ID: "n1", Add: map[string]string{"rack": "r7"}})
	h.mustApply(&SetNodeAvailability{ID: "n1", Availability: types.AvailabilityDrain})
	again := testNode("n1")
	again.Labels = map[string]string{"zone": "b"}
	h.mustApply(&UpsertNode{Node: again})
	n := h.store.View().Node("n1")
	if !maps.Equal(n.Labels, map[string]string{"zone": "b", "rack": "r7"}) || n.Availability != types.AvailabilityDrain {
		t.Fatalf("after re-registration: labels %v availability %s", n.Labels, n.Availability)
	}
}

func TestDeleteNodeLosesItsTasks(t *testing.T) {
	h := newHarness(t)
	h.mustApply(&UpsertNode{Node: testNode("n1")})
	h.mustApply(&UpsertApp{App: testApp()})
	h.mustApply(&TaskUpdates{Create: []*types.Task{testTask("t1", "api", 1), testTask("t2", "api", 2)}})
	h.mustApply(&TaskUpdates{Assign: []Assignment{{TaskID: "t1", NodeID: "n1"}, {TaskID: "t2", NodeID: "n1"}}})
	h.mustApply(&TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "t1", State: types.TaskRunning}}})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.mustApply(&DeleteNode{ID: "n1", Now: now})
	v := h.store.View()
	if v.Node("n1") != nil {
		t.Fatalf("node still there")
	}
	for _, id := range []string{"t1", "t2"} {
		tk := v.Task(id)
		if tk.State != types.TaskLost || tk.DesiredState != types.DesiredShutdown || !tk.FinishedAt.Equal(now) {
			t.Errorf("task %s: state %s desired %s finished %v", id, tk.State, tk.DesiredState, tk.FinishedAt)
		}
	}
	if _, err := h.apply(&DeleteNode{ID: "n1"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// Marking a node down loses its unfinished tasks in the same apply (one
// Raft entry: no leader change can come between), stamped with the
// command's time; finished tasks and other nodes' tasks are left alone. An
// entry without a time (written before it had one) changes only the node.
func TestNodeDownLosesItsTasksInOneEntry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		cmd      *SetNodeStatus
		wantLost bool
	}{
		{"down with a time", &SetNodeStatus{ID: "n1", Status: types.NodeDown, Now: now}, true},
		{"old entry without a time", &SetNodeStatus{ID: "n1", Status: types.NodeDown}, false},
		{"ready", &SetNodeStatus{ID: "n1", Status: types.NodeReady, Now: now}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustApply(&UpsertNode{Node: testNode("n1")})
			h.mustApply(&UpsertNode{Node: testNode("n2")})
			h.mustApply(&UpsertApp{App: testApp()})
			h.mustApply(&TaskUpdates{Create: []*types.Task{testTask("t1", "api", 1), testTask("t2", "api", 2), testTask("t3", "api", 3)}})
			h.mustApply(&TaskUpdates{Assign: []Assignment{{TaskID: "t1", NodeID: "n1"}, {TaskID: "t2", NodeID: "n1"}, {TaskID: "t3", NodeID: "n2"}}})
			h.mustApply(&TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "t1", State: types.TaskRunning}, {TaskID: "t2", State: types.TaskComplete}}})
			h.mustApply(tc.cmd)
			v := h.store.View()
			if n := v.Node("n1"); n.Status != tc.cmd.Status {
				t.Fatalf("node status %s, want %s", n.Status, tc.cmd.Status)
			}
			t1 := v.Task("t1")
			if lost := t1.State == types.TaskLost; lost != tc.wantLost {
				t.Fatalf("t1 is %s (lost: %v, want %v)", t1.State, lost, tc.wantLost)
			}
			if tc.wantLost && (!t1.FinishedAt.Equal(now) || t1.Error != "node node-n1 is down" || t1.DesiredState != types.DesiredRunning) {
				t.Errorf("t1: finished %v error %q desired %s", t1.FinishedAt, t1.Error, t1.DesiredState)
			}
			if st := v.Task("t2").State; st != types.TaskComplete {
				t.Errorf("finished t2 became %s", st)
			}
			if st := v.Task("t3").State; st != types.TaskAssigned {
				t.Errorf("t3 on another node became %s", st)
			}
		})
	}
}
