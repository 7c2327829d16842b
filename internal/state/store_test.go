package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/internal/types"
)

func TestTasksFilterAndOrder(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	h.mustApply(UpsertApp{App: &types.App{Name: "aaa"}, Now: t0})
	on := func(task *types.Task, node string) *types.Task { task.NodeID = node; return task }
	h.mustApply(TaskUpdates{Create: []*types.Task{
		on(testTask("d1", "db", 1), "n2"),
		on(testTask("a2", "api", 2), "n1"),
		on(testTask("a1b", "api", 1), "n2"),
		testTask("a1a", "api", 1),
		{ID: "x1", App: "aaa", Service: "api", Slot: 1, NodeID: "n1"},
	}, Now: t0})

	tests := []struct {
		filter TaskFilter
		want   []string
	}{
		{TaskFilter{}, []string{"x1", "a1a", "a1b", "a2", "d1"}},
		{TaskFilter{App: "web"}, []string{"a1a", "a1b", "a2", "d1"}},
		{TaskFilter{App: "web", Service: "api"}, []string{"a1a", "a1b", "a2"}},
		{TaskFilter{Service: "api"}, []string{"x1", "a1a", "a1b", "a2"}},
		{TaskFilter{NodeID: "n1"}, []string{"x1", "a2"}},
		{TaskFilter{App: "web", NodeID: "n2"}, []string{"a1b", "d1"}},
		{TaskFilter{App: "nope"}, nil},
	}
	v := h.store.View()
	for _, tt := range tests {
		var got []string
		for _, task := range v.Tasks(tt.filter) {
			got = append(got, task.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Tasks(%+v) = %v, want %v", tt.filter, got, tt.want)
		}
	}
	var apps []string
	for _, a := range v.Apps() {
		apps = append(apps, a.Name)
	}
	if !slices.Equal(apps, []string{"aaa", "web"}) {
		t.Errorf("Apps() = %v, want sorted [aaa web]", apps)
	}
}

// A pointer read before a write must not change: writes store copies.
func TestWritesDoNotMutateReadObjects(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	h.mustApply(UpsertNode{Node: testNode("n1")})
	h.mustApply(TaskUpdates{Create: []*types.Task{on(testTask("t1", "api", 1), "n1")}, Now: t0})
	old := h.store.View()
	app, node, task := old.App("web"), old.Node("n1"), old.Task("t1")

	h.mustApply(ScaleService{App: "web", Service: "api", Replicas: 9})
	h.mustApply(TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "t1", State: types.TaskFailed, ExitCode: ptr(2)}}})
	h.mustApply(TeardownDone{App: "web", NodeID: "n1"})
	h.mustApply(SetNodeStatus{ID: "n1", Status: types.NodeDown})

	if app.Service("api").Replicas != 2 || app.TornDownOn != nil || node.Status != types.NodeReady ||
		task.State != types.TaskPending || task.ExitCode != nil {
		t.Error("a write modified objects handed out earlier")
	}
	if old.App("web") != app || old.Task("t1").State != types.TaskPending {
		t.Error("an old view sees later writes")
	}
	if h.store.View().Task("t1").State != types.TaskFailed {
		t.Error("a new view does not see the write")
	}
}

func on(task *types.Task, node string) *types.Task { task.NodeID = node; return task }

func TestIndexes(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})                                         // 1
	h.mustApply(UpsertNode{Node: testNode("n1")})                                           // 2
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("t1", "api", 1)}, Now: t0})      // 3
	h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "nope", NodeID: "n1"}}, Now: t0}) // 4: no change
	v := h.store.View()
	for _, tt := range []struct {
		tables []string
		want   uint64
	}{
		{[]string{TableApps}, 1}, {[]string{TableNodes}, 2}, {[]string{TableTasks}, 3},
		{[]string{TableApps, TableNodes}, 2}, {nil, 3},
	} {
		if got := v.Index(tt.tables...); got != tt.want {
			t.Errorf("Index(%v) = %d, want %d", tt.tables, got, tt.want)
		}
	}
	if s := h.store.Stats(); s != (Stats{Apps: 1, Tasks: 1, Nodes: 1}) {
		t.Errorf("Stats() = %+v", s)
	}
}

func TestEncodeDecode(t *testing.T) {
	cmds := []Command{
		UpsertApp{App: testApp(), Now: t0}, &DeleteApp{Name: "web", Volumes: true}, PurgeApp{Name: "web"},
		TeardownDone{App: "web", NodeID: "n1"}, ScaleService{App: "web", Service: "api", Replicas: 3},
		TaskUpdates{Desired: map[string]types.TaskState{"t1": types.DesiredShutdown}},
		TaskStatusUpdate{NodeID: "n1"}, UpsertNode{Node: testNode("n1")}, SetNodeStatus{ID: "n1"},
	}
	for _, cmd := range cmds {
		b, err := Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decode(b)
		if err != nil {
			t.Fatalf("decode %T: %v", cmd, err)
		}
		if got.kind() != cmd.kind() || !jsonEqual(got, cmd) {
			t.Errorf("round trip of %T gave %T %+v", cmd, got, got)
		}
	}
	for _, bad := range [][]byte{nil, {200, '{', '}'}, {byte(kindPurgeApp), '{'}} {
		if _, err := decode(bad); err == nil {
			t.Errorf("decode(%q) accepted bad input", bad)
		}
	}
	h := newHarness(t)
	if res := h.fsm.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{200}}); res == nil {
		t.Error("FSM.Apply of an unknown command returned no error")
	}
}

func populate(h *harness) {
	h.mustApply(UpsertApp{App: testApp(), Now: t0, Deploy: true})
	h.mustApply(UpsertNode{Node: testNode("n1")})
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("t1", "api", 1), testTask("t2", "db", 1)}, Now: t0})
	h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "t1", NodeID: "n1"}}, Now: t0})
	h.mustApply(TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "t1", State: types.TaskFailed, ExitCode: ptr(1)}}})
}

// dump renders everything a view shows, to compare two stores.
func dump(t *testing.T, v *View) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"apps": v.Apps(), "tasks": v.Tasks(TaskFilter{}), "nodes": v.Nodes(), "deployments": v.Deployments("", ""),
		"ia": v.Index(TableApps), "it": v.Index(TableTasks), "in": v.Index(TableNodes),
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func snapshotOf(t *testing.T, f *FSM) *memSink {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	if !sink.closed {
		t.Fatal("Persist did not close its sink")
	}
	return sink
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	src := newHarness(t)
	populate(src)
	snap, err := src.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := dump(t, src.store.View())
	src.mustApply(PurgeApp{Name: "web"}) // after the capture: not in it
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}

	dst := newHarness(t)
	dst.mustApply(UpsertNode{Node: testNode("stale")}) // replaced by the restore
	if err := dst.fsm.Restore(ioNopCloser(sink)); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, dst.store.View()); got != want {
		t.Errorf("restored state differs:\n got %s\nwant %s", got, want)
	}
}

func TestSnapshotFailures(t *testing.T) {
	h := newHarness(t)
	populate(h)
	snap, _ := h.fsm.Snapshot()
	sink := &failSink{}
	if err := snap.Persist(sink); err == nil || !sink.cancelled {
		t.Errorf("Persist to a failing sink: err %v, cancelled %v; want an error and a cancelled sink", err, sink.cancelled)
	}

	good := snapshotOf(t, h.fsm).String()
	before := dump(t, h.store.View())
	for _, bad := range []string{"", `{"format":"berth-state-v9"}`, good[:len(good)-10]} {
		if err := h.fsm.Restore(ioNopCloser(stringsReader(bad))); err == nil {
			t.Errorf("Restore accepted a bad snapshot of %d bytes", len(bad))
		}
	}
	if dump(t, h.store.View()) != before {
		t.Error("a failed restore changed the store")
	}
}

func TestWaitForChange(t *testing.T) {
	h := newHarness(t)
	populate(h) // index 5
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Already past: returns at once.
	if idx, err := h.store.WaitForChange(ctx, []string{TableTasks}, 3); err != nil || idx != 5 {
		t.Fatalf("WaitForChange after 3 = %d, %v; want 5, nil", idx, err)
	}

	if _, err := h.store.WaitForChange(ctx, []string{"jobs"}, 0); err == nil {
		t.Error("WaitForChange accepted an unknown table")
	}

	t.Run("wakes on a write to a watched table only", func(t *testing.T) {
		done := waitAsync(ctx, h.store, []string{TableNodes}, h.store.View().Index(TableNodes))
		h.mustApply(TaskUpdates{Delete: []string{"t2"}}) // tasks only: no wake-up expected
		h.mustApply(SetNodeStatus{ID: "n1", Status: types.NodeDown})
		r := <-done
		if r.err != nil || r.idx != h.index {
			t.Errorf("woke with %d, %v; want %d, nil", r.idx, r.err, h.index)
		}
	})

	t.Run("wakes on restore", func(t *testing.T) {
		other := newHarness(t)
		populate(other)
		for range 10 {
			other.mustApply(UpsertNode{Node: testNode("n2")})
		}
		sink := snapshotOf(t, other.fsm)
		done := waitAsync(ctx, h.store, nil, h.store.View().Index())
		if err := h.fsm.Restore(ioNopCloser(sink)); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || r.idx != other.index {
			t.Errorf("woke with %d, %v; want %d, nil", r.idx, r.err, other.index)
		}
	})

	t.Run("honours its context", func(t *testing.T) {
		cctx, ccancel := context.WithCancel(ctx)
		current := h.store.View().Index()
		done := waitAsync(cctx, h.store, nil, current)
		ccancel()
		r := <-done
		if !errors.Is(r.err, context.Canceled) || r.idx != current {
			t.Errorf("cancelled wait returned %d, %v; want %d, context.Canceled", r.idx, r.err, current)
		}
	})
}

type waitResult struct {
	idx uint64
	err error
}

// waitAsync runs WaitForChange in a goroutine that ends when it returns,
// and returns once that goroutine is blocked waiting, so that the caller's
// next write really exercises the wake-up.
func waitAsync(ctx context.Context, s *Store, tables []string, after uint64) <-chan waitResult {
	blocked := make(chan struct{}, 1)
	s.onWait = func() {
		select {
		case blocked <- struct{}{}:
		default:
		}
	}
	done := make(chan waitResult, 1)
	go func() {
		idx, err := s.WaitForChange(ctx, tables, after)
		done <- waitResult{idx, err}
	}()
	select {
	case <-blocked:
	case <-ctx.Done():
	}
	return done
}

// TestWaitForNodeTasks: a waiter on one node's tasks wakes when a task of
// that node changes (placed on it, updated, moved off, deleted) and not
// when another node's task does, so an agent's blocking query is not
// woken by every task change in the cluster.
func TestWaitForNodeTasks(t *testing.T) {
	h := newHarness(t)
	populate(h) // t1 on n1, t2 unplaced
	h.mustApply(UpsertNode{Node: testNode("n2")})
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("t3", "api", 2)}, Now: t0})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	steps := []struct {
		name  string
		cmd   Command
		wakes map[string]bool // node -> woken
	}{
		{"placed on n2", TaskUpdates{Assign: []Assignment{{TaskID: "t3", NodeID: "n2"}}, Now: t0}, map[string]bool{"n1": false, "n2": true}},
		{"n1's task told to stop", TaskUpdates{Desired: map[string]types.TaskState{"t1": types.TaskShutdown}, Now: t0}, map[string]bool{"n1": true, "n2": false}},
		{"an unplaced task", TaskUpdates{Pending: map[string]string{"t2": "no node fits"}, Now: t0}, map[string]bool{"n1": false, "n2": false}},
		{"n2's task deleted", TaskUpdates{Delete: []string{"t3"}}, map[string]bool{"n1": false, "n2": true}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := map[string]uint64{}
			for n := range st.wakes {
				before[n] = h.store.View().Index(NodeTasks(n))
			}
			h.mustApply(st.cmd)
			for n, woken := range st.wakes {
				short, done := context.WithTimeout(ctx, 200*time.Millisecond)
				idx, err := h.store.WaitForChange(short, []string{NodeTasks(n)}, before[n])
				done()
				if woken && (err != nil || idx != h.index) {
					t.Errorf("%s: woke with %d, %v; want %d, nil", n, idx, err, h.index)
				}
				if !woken && err == nil {
					t.Errorf("%s: woke (index %d after %d) for a change that was not its", n, idx, before[n])
				}
			}
		})
	}

	t.Run("a node whose tasks never changed answers with the tasks table's index", func(t *testing.T) {
		if got, want := h.store.View().Index(NodeTasks("n9")), h.store.View().Index(TableTasks); got != want {
			t.Errorf("index %d, want %d", got, want)
		}
		done := waitAsync(ctx, h.store, []string{NodeTasks("n9")}, h.store.View().Index(TableTasks))
		h.mustApply(TaskUpdates{Create: []*types.Task{testTask("t4", "api", 3)}, Now: t0})
		if r := <-done; r.err != nil || r.idx != h.index {
			t.Errorf("woke with %d, %v; want %d, nil", r.idx, r.err, h.index)
		}
	})

	t.Run("the keys survive a snapshot", func(t *testing.T) {
		want := h.store.View().Index(NodeTasks("n2"))
		other := newHarness(t)
		if err := other.fsm.Restore(ioNopCloser(snapshotOf(t, h.fsm))); err != nil {
			t.Fatal(err)
		}
		if got := other.store.View().Index(NodeTasks("n2")); got != want {
			t.Errorf("restored index %d, want %d", got, want)
		}
	})
}

func TestTaskCountsByState(t *testing.T) {
	h := newHarness(t)
	populate(h) // t1 failed on n1, t2 pending
	got := h.store.View().TaskCountsByState()
	if len(got) != 2 || got[types.TaskFailed] != 1 || got[types.TaskPending] != 1 {
		t.Errorf("counts %v, want 1 failed and 1 pending", got)
	}
}

// TestNodeQuerySleepsThroughOthers: an agent's blocking query (its node's
// tasks, and the tables it also watches, some of them never written) does
// not even wake for another node's changes. memdb watches a missing key
// through the nearest node above it, which fires for every key under it:
// the query woke on every commit, found its indexes unchanged and looked
// again, a fifth of the leader's CPU at 1,000 sim nodes.
func TestNodeQuerySleepsThroughOthers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hasTasks bool
	}{{"a node with tasks", true}, {"a node that never had one", false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustApply(UpsertApp{App: testApp(), Now: t0})
			h.mustApply(UpsertNode{Node: testNode("n1")})
			h.mustApply(UpsertNode{Node: testNode("n2")})
			var tasks []*types.Task
			for i := range 20 {
				task := testTask(fmt.Sprintf("t%d", i), "api", i+1)
				task.NodeID, task.State = "n2", types.TaskAssigned
				tasks = append(tasks, task)
			}
			mine := testTask("mine", "api", 21)
			if tc.hasTasks {
				mine.NodeID, mine.State = "n1", types.TaskAssigned
			}
			h.mustApply(TaskUpdates{Create: append(tasks, mine), Now: t0})
			tables := NodeWork("n1")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var waits atomic.Int32
			blocked := make(chan struct{}, 1)
			h.store.onWait = func() {
				waits.Add(1)
				select {
				case blocked <- struct{}{}:
				default:
				}
			}
			done := make(chan waitResult, 1)
			go func() {
				idx, err := h.store.WaitForChange(ctx, tables, h.store.View().Index(tables...))
				done <- waitResult{idx, err}
			}()
			<-blocked
			for _, task := range tasks {
				h.mustApply(TaskUpdates{Desired: map[string]types.TaskState{task.ID: types.DesiredShutdown}, Now: t0})
				h.mustApply(TaskStatusUpdate{NodeID: "n2", Statuses: []types.TaskStatus{{TaskID: task.ID, State: types.TaskShutdown}}, Now: t0})
			}
			if n := waits.Load(); n != 1 {
				t.Errorf("the query looked again %d times for 40 commits on another node, want 0", n-1)
			}
			h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "mine", NodeID: "n1"}}, Desired: map[string]types.TaskState{"mine": types.DesiredShutdown}, Now: t0})
			if r := <-done; r.err != nil || r.idx != h.index {
				t.Errorf("woke with %d, %v for its own task; want %d, nil", r.idx, r.err, h.index)
			}
		})
	}
}

// An app's write wakes the agents of the nodes its tasks are on, not every
// agent: a new app with no tasks yet wakes none, an update of app web only
// n1 (where web runs), and web's removal every node (any may hold its
// networks and volumes until it reports the teardown).
func TestNodeWorkWakesForItsAppsOnly(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertNode{Node: testNode("n1")})
	h.mustApply(UpsertNode{Node: testNode("n2")})
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("a1", "api", 1)}, Now: t0})
	h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "a1", NodeID: "n1"}}, Now: t0})
	other := testApp()
	other.Name = "other"
	updated := testApp()
	updated.Secrets["key"] = &types.Secret{Name: "key", Data: []byte("s2")}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, st := range []struct {
		name  string
		cmd   Command
		woken map[string]bool
	}{
		{"a new app without tasks", UpsertApp{App: other, Now: t0}, map[string]bool{}},
		{"web scaled (not the agents' business)", ScaleService{App: "web", Service: "api", Replicas: 5, Now: t0}, map[string]bool{}},
		{"web's new secret", UpsertApp{App: updated, Now: t0}, map[string]bool{"n1": true}},
		{"web removed", DeleteApp{Name: "web", Now: t0}, map[string]bool{"n1": true, "n2": true}},
	} {
		before := h.store.View()
		h.mustApply(st.cmd)
		for _, n := range []string{"n1", "n2"} {
			keys := NodeWork(n)
			short, done := context.WithTimeout(ctx, 200*time.Millisecond)
			idx, err := h.store.WaitForChange(short, keys, before.Index(keys...))
			done()
			if woken := err == nil; woken != st.woken[n] {
				t.Errorf("%s: %s's query woke: %v (index %d), want %v", st.name, n, woken, idx, st.woken[n])
			}
		}
	}
}

// TestAppWork: an app's key moves with its own record, tasks (agents'
// reports too), deployments and pins, not with another app's, and a purged
// app's key is gone: the reconciler visits only the apps whose key moved.
func TestAppWork(t *testing.T) {
	h := newHarness(t)
	populate(h) // app web: t1 failed on n1, t2 pending
	other := testApp()
	other.Name = "shop"
	h.mustApply(UpsertApp{App: other, Now: t0, Deploy: true})
	shopTask := testTask("s1", "api", 1)
	shopTask.App = "shop"
	h.mustApply(TaskUpdates{Create: []*types.Task{shopTask}, Now: t0})
	shopApp := h.store.View().App("shop")

	steps := []struct {
		name  string
		cmd   Command
		moves map[string]bool // app -> its key moved
	}{
		{"web's task placed", TaskUpdates{Assign: []Assignment{{TaskID: "t2", NodeID: "n1"}}, Now: t0}, map[string]bool{"web": true, "shop": false}},
		{"a report of web's task", TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "t2", State: types.TaskRunning}}}, map[string]bool{"web": true, "shop": false}},
		{"shop's task deleted", TaskUpdates{Delete: []string{"s1"}}, map[string]bool{"web": false, "shop": true}},
		{"shop's record", SetServiceStatus{App: "shop", AppVersion: shopApp.Version, Statuses: map[string]*types.ServiceStatus{
			"api": {State: types.ServiceConverging, Version: shopApp.Service("api").Version}}}, map[string]bool{"web": false, "shop": true}},
		{"a node", UpsertNode{Node: testNode("n2")}, map[string]bool{"web": false, "shop": false}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := map[string]uint64{}
			for app := range st.moves {
				before[app] = h.store.View().Index(AppWork(app))
			}
			h.mustApply(st.cmd)
			for app, moved := range st.moves {
				got := h.store.View().Index(AppWork(app))
				if listed := h.store.View().AppWork()[app]; listed != got {
					t.Errorf("%s: AppWork lists %d, Index says %d", app, listed, got)
				}
				if moved && got != h.index {
					t.Errorf("%s: key at %d, want the write's %d", app, got, h.index)
				}
				if !moved && got != before[app] {
					t.Errorf("%s: key moved %d -> %d for a change that was not its", app, before[app], got)
				}
			}
		})
	}

	t.Run("a purged app's key is gone", func(t *testing.T) {
		h.mustApply(PurgeApp{Name: "shop"})
		v := h.store.View()
		entry, err := v.txn.First(tableIndex, "id", AppWork("shop"))
		if err != nil || entry != nil {
			t.Errorf("key of the purged app: %v, %v; want none", entry, err)
		}
		if _, listed := v.AppWork()["shop"]; listed {
			t.Errorf("the purged app is listed by AppWork")
		}
		if got, want := v.Index(AppWork("shop")), v.Index(appWorkTables...); got != want {
			t.Errorf("index without a key %d, want the tables' %d", got, want)
		}
	})
}
