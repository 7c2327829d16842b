package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// volumeApp is app "a" whose service db (replicas) mounts the named volume
// "data".
func volumeApp(replicas int) *types.App {
	db := service("db", replicas)
	db.Mounts = []types.Mount{{Type: types.MountVolume, Source: "data", Target: "/data"}}
	return &types.App{Name: "a", Services: []*types.Service{db}, Volumes: map[string]*types.Volume{"data": {Name: "data"}}}
}

// load runs a task of app "busy" on each node given, so the scheduler
// prefers the other nodes.
func (w *world) load(nodes ...string) {
	if w.store.View().App("busy") == nil {
		w.up(&types.App{Name: "busy", Services: []*types.Service{service("b", 0)}})
	}
	for _, id := range nodes {
		w.must(&state.TaskUpdates{Create: []*types.Task{{ID: "busy-" + id, App: "busy", Service: "b", Slot: 1, NodeID: id,
			DesiredState: types.DesiredRunning, State: types.TaskRunning}}, Now: w.clock.Now()})
	}
}

// slotNodes maps each slot of a/db to the node of its wanted task.
func (w *world) slotNodes() map[int]string {
	m := map[int]string{}
	for _, tk := range w.tasks("a", "db") {
		if tk.DesiredState == types.DesiredRunning {
			m[tk.Slot] = tk.NodeID
		}
	}
	return m
}

func (w *world) down(app string, volumes bool) {
	w.must(&state.DeleteApp{Name: app, Volumes: volumes})
	w.step()
	for _, n := range w.store.View().Nodes() {
		w.must(&state.TeardownDone{App: app, NodeID: n.ID, Now: w.clock.Now()})
	}
	w.step()
	if w.store.View().App(app) != nil {
		w.t.Fatalf("app %s not purged after down", app)
	}
}

// TestPinnedVolumeComesBackAfterDownAndUp: after `down` and `up`, each
// replica goes back to the node that has its volume, although the scheduler
// would now prefer the idle node; `down -v` forgets the pins.
func TestPinnedVolumeComesBackAfterDownAndUp(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.node("n2")
	w.node("n3")
	w.up(volumeApp(2))
	w.step()
	first := w.slotNodes()
	if first[1] == "" || first[2] == "" || first[1] == first[2] {
		t.Fatalf("first placement %v, want two nodes", first)
	}
	w.runAll("a", "db")
	w.down("a", false)
	// Load the pinned nodes, so that without pins db would go to the others.
	w.load(first[1], first[2])
	w.up(volumeApp(2))
	w.step()
	if got := w.slotNodes(); got[1] != first[1] || got[2] != first[2] {
		t.Fatalf("after down and up db is on %v, want back on %v", got, first)
	}
	for _, tk := range w.tasks("a", "db") {
		if tk.State != types.TaskAssigned {
			t.Fatalf("task %s is %s (%s), want assigned", tk.ID, tk.State, tk.PendingReason)
		}
	}

	w.down("a", true)
	if pins := w.store.View().VolumePins("a"); len(pins) != 0 {
		t.Fatalf("pins after down -v: %v", pins)
	}
}

// TestPinnedVolumeRestartsOnItsNode: a crashed replica restarts on its
// node, not on an idle one.
func TestPinnedVolumeRestartsOnItsNode(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.up(volumeApp(1))
	w.step()
	w.runAll("a", "db")
	w.node("n2") // idle: the scheduler's choice for a new task
	w.load("n1")
	cur := taskOn(t, w, "a", "db", "n1")
	w.report(cur.ID, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(1)})
	w.clock.Advance(time.Minute)
	w.step()
	if got := w.slotNodes(); got[1] != "n1" {
		t.Fatalf("restarted db.1 is on %q, want n1 where its volume is", got[1])
	}
}

// TestPinnedVolumeWaitsForItsNode: a replica whose node is down, drained or
// removed waits with a reason naming the node and the way out, never
// starting elsewhere with an empty volume; the node coming back, or an
// unpin, places it.
func TestPinnedVolumeWaitsForItsNode(t *testing.T) {
	cases := []struct {
		name, reason string
		lose         func(w *world)
		recover      func(w *world)
		wantNode     string // where the replica lands after recover
	}{
		{"down", "which is down",
			func(w *world) {
				w.must(&state.SetNodeStatus{ID: "n1", Status: types.NodeDown})
				for _, tk := range w.tasks("a", "db") {
					w.report(tk.ID, types.TaskStatus{State: types.TaskLost})
				}
			},
			func(w *world) { w.must(&state.SetNodeStatus{ID: "n1", Status: types.NodeReady}) }, "n1"},
		{"drained", "which is drained",
			func(w *world) { w.must(&state.SetNodeAvailability{ID: "n1", Availability: types.AvailabilityDrain}) },
			func(w *world) { w.must(&state.UnpinVolumes{App: "a", Service: "db", Slot: 1}) }, "n2"},
		{"removed", "which was removed from the cluster",
			func(w *world) { w.must(&state.DeleteNode{ID: "n1", Now: w.clock.Now()}) },
			func(w *world) { w.must(&state.UnpinVolumes{App: "a", Service: "db"}) }, "n2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.node("n1")
			w.up(volumeApp(1))
			w.step()
			w.runAll("a", "db")
			old := taskOn(t, w, "a", "db", "n1")
			w.node("n2")
			tc.lose(w)
			w.step()
			repl := replacementOf(t, w, old)
			if repl.State != types.TaskPending || !strings.Contains(repl.PendingReason, tc.reason) ||
				!strings.Contains(repl.PendingReason, "berth service unpin db.1") {
				t.Fatalf("replacement is %s (%q), want pending %q with the unpin hint", repl.State, repl.PendingReason, tc.reason)
			}
			if tc.name == "drained" {
				if got := w.store.View().Task(old.ID); got.DesiredState != types.DesiredRunning {
					t.Fatalf("old db.1 on the drained node is desired %s, want kept running", got.DesiredState)
				}
			}
			tc.recover(w)
			w.step()
			repl = w.store.View().Task(repl.ID)
			if repl.State != types.TaskAssigned || repl.NodeID != tc.wantNode {
				t.Fatalf("replacement is %s on %q (%s), want assigned on %s", repl.State, repl.NodeID, repl.PendingReason, tc.wantNode)
			}
			if pin := w.store.View().VolumePin("a", "db", 1); pin == nil || pin.NodeID != tc.wantNode {
				t.Fatalf("pin after recovery = %+v, want on %s", pin, tc.wantNode)
			}
			if got := w.store.View().Task(old.ID); !got.State.Terminal() && got.DesiredState != types.DesiredShutdown {
				t.Fatalf("old db.1 desired %s once replaced, want shutdown", got.DesiredState)
			}
		})
	}
}

// TestPinnedSlotStopsBeforeItStarts: a new version of a pinned replica
// waits for the old task to stop on the node before it is placed there, so
// two processes never share the volume.
func TestPinnedSlotStopsBeforeItStarts(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.up(volumeApp(1))
	w.step()
	w.runAll("a", "db")
	old := taskOn(t, w, "a", "db", "n1")
	app := volumeApp(1)
	app.Services[0].Image = "img:2"
	w.up(app)
	w.step()
	repl := replacementOf(t, w, old)
	if repl.State != types.TaskPending || !strings.Contains(repl.PendingReason, "waiting for task "+old.ID+" to stop") {
		t.Fatalf("new version is %s (%q) while the old one runs, want pending until it stops", repl.State, repl.PendingReason)
	}
	w.report(old.ID, types.TaskStatus{State: types.TaskShutdown})
	w.step()
	if repl = w.store.View().Task(repl.ID); repl.State != types.TaskAssigned || repl.NodeID != "n1" {
		t.Fatalf("new version is %s on %q after the old stopped, want assigned on n1", repl.State, repl.NodeID)
	}
}

// TestPinnedNodeFullSaysWhy: a pinned replica whose node is up but cannot
// take it (its port is taken there) waits, naming the node's reason, and is
// not placed on the free node.
func TestPinnedNodeFullSaysWhy(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	app := volumeApp(1)
	app.Services[0].Ports = []types.Port{{Target: 80, Published: 8080, Protocol: "tcp"}}
	w.up(app)
	w.step()
	w.runAll("a", "db")
	cur := taskOn(t, w, "a", "db", "n1")
	w.node("n2")
	// Another app takes the port on n1 while db.1 is down.
	w.report(cur.ID, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(1)})
	squatter := service("s", 1)
	squatter.Ports = app.Services[0].Ports
	w.up(&types.App{Name: "other", Services: []*types.Service{squatter}})
	w.must(&state.TaskUpdates{Create: []*types.Task{{ID: "squat", App: "other", Service: "s", Slot: 1, NodeID: "n1",
		DesiredState: types.DesiredRunning, State: types.TaskRunning}}, Now: w.clock.Now()})
	w.clock.Advance(time.Minute)
	w.step()
	repl := replacementOf(t, w, cur)
	want := "volume data of db.1 is on node n1, which cannot take it: port 8080/tcp in use; to start it elsewhere with empty volumes, run berth service unpin db.1"
	if repl.State != types.TaskPending || repl.PendingReason != want {
		t.Fatalf("replacement is %s on %q (%q), want pending with %q", repl.State, repl.NodeID, repl.PendingReason, want)
	}
}
