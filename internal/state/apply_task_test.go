package state

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

func TestTaskUpdates(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	h.mustApply(TaskUpdates{Create: []*types.Task{
		testTask("t1", "api", 1), testTask("t2", "api", 2), testTask("t3", "db", 1), testTask("t4", "db", 2),
		{ID: "ghost", App: "gone", Service: "x", Slot: 1}, // app missing: skipped
	}, Now: t0})

	v := h.store.View()
	if v.Task("ghost") != nil {
		t.Error("a task of a missing app was created")
	}
	t1 := v.Task("t1")
	if t1.State != types.TaskPending || t1.DesiredState != types.DesiredRunning || !t1.CreatedAt.Equal(t0) || t1.CreateIndex != 2 {
		t.Errorf("created task = %+v, want pending, desired running, created at t0, index 2", t1)
	}

	h.mustApply(TaskUpdates{
		Assign:  []Assignment{{TaskID: "t1", NodeID: "n1"}, {TaskID: "t2", NodeID: "n2"}},
		Pending: map[string]string{"t3": "no node has 4 CPUs free"},
		Now:     t0,
	})
	// t1 is assigned now: a second, stale assignment must not move it.
	h.mustApply(TaskUpdates{
		Assign:  []Assignment{{TaskID: "t1", NodeID: "n9"}, {TaskID: "t3", NodeID: "n1"}},
		Desired: map[string]types.TaskState{"t2": types.DesiredShutdown, "t4": types.DesiredShutdown},
		Delete:  []string{"missing"},
		Now:     t0,
	})
	h.mustApply(TaskUpdates{Create: []*types.Task{{ID: "t1", App: "web", Service: "api", Slot: 7}}, Now: t0})

	tests := []struct {
		id             string
		node           string
		state, desired types.TaskState
		pendingReason  string
		modifyIndex    uint64
	}{
		{id: "t1", node: "n1", state: types.TaskAssigned, desired: types.DesiredRunning, modifyIndex: 3},
		{id: "t2", node: "n2", state: types.TaskAssigned, desired: types.DesiredShutdown, modifyIndex: 4},
		{id: "t3", node: "n1", state: types.TaskAssigned, desired: types.DesiredRunning, modifyIndex: 4},
		// Never placed, then told to stop: nobody else would finish it.
		{id: "t4", state: types.TaskShutdown, desired: types.DesiredShutdown, modifyIndex: 4},
	}
	v = h.store.View()
	for _, tt := range tests {
		got := v.Task(tt.id)
		if got.NodeID != tt.node || got.State != tt.state || got.DesiredState != tt.desired ||
			got.PendingReason != tt.pendingReason || got.ModifyIndex != tt.modifyIndex {
			t.Errorf("task %s = node %q state %s desired %s reason %q index %d; want %q %s %s %q %d", tt.id,
				got.NodeID, got.State, got.DesiredState, got.PendingReason, got.ModifyIndex,
				tt.node, tt.state, tt.desired, tt.pendingReason, tt.modifyIndex)
		}
	}
	if v.Task("t1").Slot != 1 {
		t.Error("creating an existing task ID replaced the task")
	}

	h.mustApply(TaskUpdates{Delete: []string{"t2"}})
	if h.store.View().Task("t2") != nil {
		t.Error("deleted task still there")
	}
}

func TestTaskUpdatesPendingReason(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("t1", "api", 1)}, Now: t0})
	h.mustApply(TaskUpdates{Pending: map[string]string{"t1": "no node with label zone=b"}})
	if got := h.store.View().Task("t1").PendingReason; got != "no node with label zone=b" {
		t.Errorf("pending reason = %q", got)
	}
	// Assigning clears the reason.
	h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "t1", NodeID: "n1"}}})
	if got := h.store.View().Task("t1").PendingReason; got != "" {
		t.Errorf("pending reason after assignment = %q, want none", got)
	}
}

func TestTaskStatusUpdate(t *testing.T) {
	started := t0.Add(time.Second)
	tests := []struct {
		name    string
		from    types.TaskState // the task's state before the report
		node    string          // the reporting node; the task is on n1
		status  types.TaskStatus
		want    types.TaskState
		changed bool
	}{
		{name: "assigned to starting", from: types.TaskAssigned, node: "n1",
			status: types.TaskStatus{State: types.TaskStarting}, want: types.TaskStarting, changed: true},
		{name: "starting to running with details", from: types.TaskStarting, node: "n1",
			status: types.TaskStatus{State: types.TaskRunning, ContainerID: "c1", StartedAt: started, Health: types.HealthStarting},
			want:   types.TaskRunning, changed: true},
		{name: "health change while running", from: types.TaskRunning, node: "n1",
			status: types.TaskStatus{State: types.TaskRunning, Health: types.HealthHealthy}, want: types.TaskRunning, changed: true},
		{name: "same state, nothing new", from: types.TaskRunning, node: "n1",
			status: types.TaskStatus{State: types.TaskRunning}, want: types.TaskRunning},
		{name: "running back to starting is ignored", from: types.TaskRunning, node: "n1",
			status: types.TaskStatus{State: types.TaskStarting, Error: "stale"}, want: types.TaskRunning},
		{name: "running to failed", from: types.TaskRunning, node: "n1",
			status: types.TaskStatus{State: types.TaskFailed, ExitCode: ptr(3), Error: "exit 3"}, want: types.TaskFailed, changed: true},
		{name: "terminal is final", from: types.TaskComplete, node: "n1",
			status: types.TaskStatus{State: types.TaskFailed, ExitCode: ptr(1)}, want: types.TaskComplete},
		{name: "report from the wrong node is ignored", from: types.TaskAssigned, node: "n2",
			status: types.TaskStatus{State: types.TaskRunning}, want: types.TaskAssigned},
		{name: "unknown state is ignored", from: types.TaskAssigned, node: "n1",
			status: types.TaskStatus{State: "exploded"}, want: types.TaskAssigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustApply(UpsertApp{App: testApp(), Now: t0})
			task := testTask("t1", "api", 1)
			task.NodeID, task.State = "n1", tt.from
			if tt.from == types.TaskRunning {
				task.StartedAt = t0
			}
			h.mustApply(TaskUpdates{Create: []*types.Task{task}, Now: t0})
			before := *h.store.View().Task("t1")

			tt.status.TaskID = "t1"
			h.mustApply(TaskStatusUpdate{NodeID: tt.node, Statuses: []types.TaskStatus{tt.status, {TaskID: "missing", State: types.TaskRunning}}, Now: t0.Add(time.Hour)})
			got := h.store.View().Task("t1")
			if got.State != tt.want {
				t.Errorf("state = %s, want %s", got.State, tt.want)
			}
			if changed := got.ModifyIndex != before.ModifyIndex; changed != tt.changed {
				t.Errorf("task written = %v, want %v", changed, tt.changed)
			}
			if !tt.changed {
				return
			}
			if got.State == types.TaskRunning && got.StartedAt.IsZero() {
				t.Error("a running task has no start time")
			}
			if got.State.Terminal() && !got.FinishedAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("finished at %v, want the batch time", got.FinishedAt)
			}
			st := tt.status
			if (st.ContainerID != "" && got.ContainerID != st.ContainerID) || (st.Health != "" && got.Health != st.Health) ||
				(st.Error != "" && got.Error != st.Error) || (!st.StartedAt.IsZero() && !got.StartedAt.Equal(st.StartedAt)) ||
				(st.ExitCode != nil && (got.ExitCode == nil || *got.ExitCode != *st.ExitCode)) {
				t.Errorf("task %+v does not carry the reported details %+v", got, st)
			}
		})
	}
}

// TestTaskProgress: an agent's progress of a starting task is kept, a newer
// one replaces it, and a report without one (the task runs) clears it.
func TestTaskProgress(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	task := testTask("t1", "api", 1)
	task.NodeID, task.State = "n1", types.TaskStarting
	h.mustApply(TaskUpdates{Create: []*types.Task{task}, Now: t0})
	steps := []struct {
		status types.TaskStatus
		want   string
	}{
		{types.TaskStatus{State: types.TaskStarting, Progress: "pulling image web: 1 of 2 layers"}, "pulling image web: 1 of 2 layers"},
		{types.TaskStatus{State: types.TaskStarting, Progress: "pulling image web: 2 of 2 layers"}, "pulling image web: 2 of 2 layers"},
		{types.TaskStatus{State: types.TaskRunning}, ""},
	}
	for i, s := range steps {
		s.status.TaskID = "t1"
		h.mustApply(TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{s.status}, Now: t0})
		if got := h.store.View().Task("t1").Progress; got != s.want {
			t.Errorf("step %d: progress = %q, want %q", i, got, s.want)
		}
	}
}

// TestTaskPaused: a running task's pause follows its agent's reports, and
// a task that ended is not paused.
func TestTaskPaused(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	task := testTask("t1", "api", 1)
	task.NodeID, task.State = "n1", types.TaskRunning
	h.mustApply(TaskUpdates{Create: []*types.Task{task}, Now: t0})
	for i, s := range []struct {
		status types.TaskStatus
		want   bool
	}{
		{types.TaskStatus{State: types.TaskRunning, Paused: true}, true},
		{types.TaskStatus{State: types.TaskRunning}, false},
		{types.TaskStatus{State: types.TaskRunning, Paused: true}, true},
		{types.TaskStatus{State: types.TaskFailed, ExitCode: ptr(137), Paused: true}, false},
	} {
		s.status.TaskID = "t1"
		h.mustApply(TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{s.status}, Now: t0})
		if got := h.store.View().Task("t1").Paused; got != s.want {
			t.Errorf("step %d: paused = %v, want %v", i, got, s.want)
		}
	}
}

// TestTaskStatusBatch: several nodes' reports in one entry apply as each
// would alone, a status of a task on another node included (ignored).
func TestTaskStatusBatch(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	t1, t2 := testTask("t1", "api", 1), testTask("t2", "api", 2)
	t1.NodeID, t1.State = "n1", types.TaskAssigned
	t2.NodeID, t2.State = "n2", types.TaskAssigned
	h.mustApply(TaskUpdates{Create: []*types.Task{t1, t2}, Now: t0})
	h.mustApply(TaskStatusBatch{Reports: []TaskStatusUpdate{
		{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "t1", State: types.TaskRunning}, {TaskID: "t2", State: types.TaskFailed}}, Now: t0},
		{NodeID: "n2", Statuses: []types.TaskStatus{{TaskID: "t2", State: types.TaskStarting}}, Now: t0},
		{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "t1", State: types.TaskComplete, ExitCode: ptr(0)}}, Now: t0},
	}})
	v := h.store.View()
	if got := v.Task("t1"); got.State != types.TaskComplete || got.ModifyIndex != h.index {
		t.Errorf("t1: %s at index %d, want complete at %d", got.State, got.ModifyIndex, h.index)
	}
	if got := v.Task("t2").State; got != types.TaskStarting {
		t.Errorf("t2: %s, want starting (n1's report of it ignored)", got)
	}
}

// TestOwnReportsDoNotWakeTheNode: a node's blocking query (the NodeTasks
// key) moves for the work it is given and for final states, but not for
// its own report of a task that goes on, which it knows already.
func TestOwnReportsDoNotWakeTheNode(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	task := testTask("t1", "api", 1)
	task.NodeID, task.State = "n1", types.TaskAssigned
	h.mustApply(TaskUpdates{Create: []*types.Task{task}, Now: t0})
	key := NodeTasks("n1")
	steps := []struct {
		name string
		cmd  Command
		wake bool
	}{
		{"starting", TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "t1", State: types.TaskStarting}}, Now: t0}, false},
		{"running, in a batch", TaskStatusBatch{Reports: []TaskStatusUpdate{{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "t1", State: types.TaskRunning}}, Now: t0}}}, false},
		{"healthy", TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "t1", State: types.TaskRunning, Health: types.HealthHealthy}}, Now: t0}, false},
		{"told to stop", TaskUpdates{Desired: map[string]types.TaskState{"t1": types.DesiredShutdown}, Now: t0}, true},
		{"stopped", TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "t1", State: types.TaskShutdown}}, Now: t0}, true},
		{"deleted", TaskUpdates{Delete: []string{"t1"}, Now: t0}, true},
	}
	for _, s := range steps {
		before := h.store.View().Index(key)
		h.mustApply(s.cmd)
		after := h.store.View().Index(key)
		if woke := after != before; woke != s.wake {
			t.Errorf("%s: node's key moved %d -> %d, want moved = %v", s.name, before, after, s.wake)
		}
		if got := h.store.View().Index(TableTasks); got != h.index {
			t.Errorf("%s: the tasks table's index is %d, want %d (other watchers still see every change)", s.name, got, h.index)
		}
	}
}
