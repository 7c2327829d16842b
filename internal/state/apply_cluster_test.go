package state

import (
	"bytes"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

func TestClusterRecord(t *testing.T) {
	h := newHarness(t)
	if _, err := h.apply(&SetTokens{WorkerSealed: []byte("w")}); err == nil {
		t.Fatal("tokens set before the cluster exists")
	}
	h.mustApply(&InitCluster{Cluster: &types.Cluster{ID: "ignored", CACertPEM: []byte("ca"), WorkerTokenSealed: []byte("w1"), ManagerTokenSealed: []byte("m1")}})
	if _, err := h.apply(&InitCluster{Cluster: &types.Cluster{}}); err == nil {
		t.Fatal("cluster initialised twice")
	}
	h.mustApply(&SetTokens{WorkerSealed: []byte("w2")})
	h.mustApply(&UpsertManager{Manager: types.Manager{ID: "m1", RaftAddr: "a:1"}})
	h.mustApply(&UpsertManager{Manager: types.Manager{ID: "m2", RaftAddr: "b:1"}})
	h.mustApply(&UpsertManager{Manager: types.Manager{ID: "m1", RaftAddr: "a:2"}})
	h.mustApply(&RemoveManager{ID: "m2"})
	cl := h.store.View().Cluster()
	if string(cl.WorkerTokenSealed) != "w2" || string(cl.ManagerTokenSealed) != "m1" {
		t.Fatalf("tokens %q %q", cl.WorkerTokenSealed, cl.ManagerTokenSealed)
	}
	if len(cl.Managers) != 1 || cl.Managers[0].RaftAddr != "a:2" {
		t.Fatalf("managers %+v", cl.Managers)
	}
	// The record survives a snapshot round trip.
	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t)
	if err := h2.fsm.Restore(ioNopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got := h2.store.View().Cluster(); got == nil || string(got.CACertPEM) != "ca" || len(got.Managers) != 1 {
		t.Fatalf("after restore: %+v", got)
	}
}

// After a restore of an older state, indexes still move forward, so a
// blocking query past the old index wakes up.
func TestRestoreKeepsIndexesMonotonic(t *testing.T) {
	h := newHarness(t)
	h.mustApply(&UpsertNode{Node: testNode("n1")})
	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		h.mustApply(&UpdateNodeLabels{ID: "n1", Add: map[string]string{"k": string(rune('a' + i))}})
	}
	before := h.store.View().Index()
	if err := h.fsm.Restore(ioNopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	v := h.store.View()
	if v.Index(TableNodes) <= before || v.Node("n1").Labels["k"] != "" {
		t.Fatalf("after restore: index %d (was %d), labels %v", v.Index(TableNodes), before, v.Node("n1").Labels)
	}
}

// A node's teardown report means its containers of the app are gone: its
// unfinished tasks of the app become shut down; others are left alone.
func TestTeardownShutsDownTheNodesTasks(t *testing.T) {
	h := newHarness(t)
	h.mustApply(&UpsertNode{Node: testNode("n1")})
	h.mustApply(&UpsertNode{Node: testNode("n2")})
	h.mustApply(&UpsertApp{App: testApp()})
	h.mustApply(&TaskUpdates{Create: []*types.Task{testTask("t1", "api", 1), testTask("t2", "api", 2), testTask("t3", "db", 1)}})
	h.mustApply(&TaskUpdates{Assign: []Assignment{{TaskID: "t1", NodeID: "n1"}, {TaskID: "t2", NodeID: "n2"}, {TaskID: "t3", NodeID: "n1"}}})
	h.mustApply(&TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "t1", State: types.TaskRunning}, {TaskID: "t3", State: types.TaskFailed}}})
	h.mustApply(&DeleteApp{Name: "web"})
	h.mustApply(&TeardownDone{App: "web", NodeID: "n1"})
	v := h.store.View()
	for id, want := range map[string]types.TaskState{"t1": types.TaskShutdown, "t2": types.TaskAssigned, "t3": types.TaskFailed} {
		if got := v.Task(id).State; got != want {
			t.Errorf("task %s: %s, want %s", id, got, want)
		}
	}
}
