package controller

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// fakeClock is a Clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// world is a real store and FSM with commands applied in order, as Raft
// would, without Raft.
type world struct {
	t     testing.TB
	store *state.Store
	fsm   *state.FSM
	index uint64
	clock *fakeClock
	rec   *Reconciler
	ids   int
}

func newWorld(t testing.TB) *world {
	t.Helper()
	store, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, store: store, fsm: state.NewFSM(store, nil), clock: &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	w.rec = NewReconciler(store, w, w, w.clock, nil)
	w.rec.NewID = func() string { w.ids++; return fmt.Sprintf("t%03d", w.ids) }
	return w
}

// Commit implements Committer.
func (w *world) Commit(_ context.Context, cmd state.Command) (any, error) {
	b, err := state.Encode(cmd)
	if err != nil {
		return nil, err
	}
	w.index++
	res := w.fsm.Apply(&raft.Log{Index: w.index, Data: b})
	if err, ok := res.(error); ok {
		return nil, err
	}
	return res, nil
}

// ApplyPlan implements PlanApplier: a fake that trusts the plan (the
// re-check is the server's, tested there).
func (w *world) ApplyPlan(ctx context.Context, p scheduler.Plan) error {
	upd := &state.TaskUpdates{Pending: map[string]string{}, Now: w.clock.Now()}
	view := w.store.View()
	for _, pl := range p.Placements {
		upd.Assign = append(upd.Assign, state.Assignment{TaskID: pl.TaskID, NodeID: pl.NodeID})
	}
	for _, f := range p.Failures {
		if t := view.Task(f.TaskID); t != nil && t.PendingReason != f.Reason {
			upd.Pending[f.TaskID] = f.Reason
		}
	}
	if len(upd.Assign) == 0 && len(upd.Pending) == 0 {
		return nil
	}
	_, err := w.Commit(ctx, upd)
	return err
}

func (w *world) must(cmd state.Command) any {
	w.t.Helper()
	res, err := w.Commit(context.Background(), cmd)
	if err != nil {
		w.t.Fatalf("commit %T: %v", cmd, err)
	}
	return res
}

func (w *world) node(id string) {
	w.must(&state.UpsertNode{Node: &types.Node{ID: id, Name: id, Address: "127.0.0.1:1", Drivers: []string{"docker", "exec"},
		Status: types.NodeReady, Availability: types.AvailabilityActive,
		Capacity: types.ResourceAmounts{NanoCPUs: 4e9, MemoryBytes: 8 << 30}}})
}

func (w *world) up(app *types.App) {
	w.must(&state.UpsertApp{App: app, Now: w.clock.Now(), Deploy: true})
}

// step runs reconcile passes until one changes nothing, as Run would.
func (w *world) step() time.Time {
	w.t.Helper()
	var wake time.Time
	for i := 0; i < 10; i++ {
		before := w.index
		var err error
		wake, err = w.rec.Step(context.Background())
		if err != nil {
			w.t.Fatalf("step: %v", err)
		}
		if w.index == before {
			return wake
		}
	}
	w.t.Fatalf("reconciler did not settle after 10 passes")
	return wake
}

// report sets observed state as an agent would.
func (w *world) report(taskID string, st types.TaskStatus) {
	w.t.Helper()
	t := w.store.View().Task(taskID)
	if t == nil {
		w.t.Fatalf("no task %s", taskID)
	}
	st.TaskID = taskID
	w.must(&state.TaskStatusUpdate{NodeID: t.NodeID, Statuses: []types.TaskStatus{st}, Now: w.clock.Now()})
}

// runAll reports every assigned task of a service running.
func (w *world) runAll(app, svc string) {
	for _, t := range w.tasks(app, svc) {
		if t.State == types.TaskAssigned && t.DesiredState == types.DesiredRunning {
			w.report(t.ID, types.TaskStatus{State: types.TaskRunning, StartedAt: w.clock.Now()})
		}
	}
}

func (w *world) tasks(app, svc string) []*types.Task {
	return w.store.View().Tasks(state.TaskFilter{App: app, Service: svc})
}

// wanted returns the tasks desired running, by state.
func (w *world) wanted(app, svc string) map[types.TaskState]int {
	m := map[types.TaskState]int{}
	for _, t := range w.tasks(app, svc) {
		if t.DesiredState == types.DesiredRunning {
			m[t.State]++
		}
	}
	return m
}

func service(name string, replicas int) *types.Service {
	return &types.Service{Name: name, Image: "img", Mode: types.ModeReplicated, Replicas: replicas,
		RestartPolicy: types.RestartPolicy{Condition: types.RestartOnFailure}}
}

func exitCode(n int) *int { return &n }
