package controller

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// TestDrainWithNowhereToGoKeepsTheOldTask drains a node whose task no other
// node can take (its host port is taken there): the old task keeps running
// and serving, its replacement waits with the scheduler's reason, and the
// old task stops only once a node that can take the replacement appears.
func TestDrainWithNowhereToGoKeepsTheOldTask(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.node("n2")
	web := service("web", 2)
	web.Ports = []types.Port{{Target: 80, Published: 8080, Protocol: "tcp"}}
	w.up(&types.App{Name: "a", Services: []*types.Service{web}})
	w.step()
	w.runAll("a", "web")
	old := taskOn(t, w, "a", "web", "n2")

	w.must(&state.SetNodeAvailability{ID: "n2", Availability: types.AvailabilityDrain})
	w.step()
	if got := w.store.View().Task(old.ID); got.DesiredState != types.DesiredRunning {
		t.Fatalf("old task on drained n2 is desired %s with nowhere else to go, want it kept running", got.DesiredState)
	}
	repl := replacementOf(t, w, old)
	if repl.State != types.TaskPending || !strings.Contains(repl.PendingReason, "8080") {
		t.Fatalf("replacement is %s (%q), want pending naming the port", repl.State, repl.PendingReason)
	}
	before := w.index
	w.step()
	if w.index != before {
		t.Fatalf("a drain with nowhere to go writes on every pass")
	}

	w.node("n3")
	w.step()
	repl = w.store.View().Task(repl.ID)
	if repl.State != types.TaskAssigned || repl.NodeID != "n3" {
		t.Fatalf("replacement is %s on %q after n3 joined, want assigned on n3", repl.State, repl.NodeID)
	}
	if got := w.store.View().Task(old.ID); got.DesiredState != types.DesiredShutdown {
		t.Fatalf("old task is desired %s once its replacement is placed, want shutdown", got.DesiredState)
	}
}

// TestDrainCancelledKeepsTheOldTask activates a drained node again while the
// replacement still waits: the replacement is dropped and the old task stays.
func TestDrainCancelledKeepsTheOldTask(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	web := service("web", 1)
	w.up(&types.App{Name: "a", Services: []*types.Service{web}})
	w.step()
	w.runAll("a", "web")
	old := taskOn(t, w, "a", "web", "n1")
	w.must(&state.SetNodeAvailability{ID: "n1", Availability: types.AvailabilityDrain})
	w.step()
	repl := replacementOf(t, w, old)
	if repl.State != types.TaskPending {
		t.Fatalf("replacement is %s with the only node drained, want pending", repl.State)
	}
	w.must(&state.SetNodeAvailability{ID: "n1", Availability: types.AvailabilityActive})
	w.step()
	v := w.store.View()
	if got := v.Task(old.ID); got.DesiredState != types.DesiredRunning {
		t.Fatalf("old task desired %s after the drain was undone, want running", got.DesiredState)
	}
	if got := v.Task(repl.ID); got.DesiredState != types.DesiredShutdown {
		t.Fatalf("replacement desired %s after the drain was undone, want shutdown", got.DesiredState)
	}
}

func taskOn(t *testing.T, w *world, app, svc, node string) *types.Task {
	t.Helper()
	for _, tk := range w.tasks(app, svc) {
		if tk.NodeID == node && tk.DesiredState == types.DesiredRunning {
			return tk
		}
	}
	t.Fatalf("no wanted task of %s on %s", svc, node)
	return nil
}

// replacementOf returns the newest other task of old's slot.
func replacementOf(t *testing.T, w *world, old *types.Task) *types.Task {
	t.Helper()
	var repl *types.Task
	for _, tk := range w.tasks(old.App, old.Service) {
		if tk.Slot == old.Slot && tk.ID != old.ID && (repl == nil || tk.CreateIndex > repl.CreateIndex) {
			repl = tk
		}
	}
	if repl == nil {
		t.Fatalf("slot %d has no replacement for %s", old.Slot, old.ID)
	}
	return repl
}

// TestDrainKeepsZonesBalanced drains a node of zone a while 4 replicas
// spread 2/2 over zones a and b: the replacement goes to the other node of
// zone a, as the task it replaces no longer counts there (zones end 2/2,
// not 3/1).
func TestDrainKeepsZonesBalanced(t *testing.T) {
	w := newWorld(t)
	zone := map[string]string{"n1": "b", "n2": "b", "n3": "a", "n4": "a"}
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		w.node(id)
		w.must(&state.UpdateNodeLabels{ID: id, Add: map[string]string{"zone": zone[id]}})
	}
	web := service("web", 4)
	web.Placement.Preferences = []string{"node.labels.zone"}
	w.up(&types.App{Name: "a", Services: []*types.Service{web}})
	w.step()
	w.runAll("a", "web")
	w.must(&state.SetNodeAvailability{ID: "n3", Availability: types.AvailabilityDrain})
	w.step()
	perZone := map[string]int{}
	for _, tk := range w.tasks("a", "web") {
		if tk.DesiredState == types.DesiredRunning && tk.State != types.TaskPending {
			perZone[zone[tk.NodeID]]++
		}
	}
	if perZone["a"] != 2 || perZone["b"] != 2 {
		t.Fatalf("after draining n3 the zones hold %v, want 2/2", perZone)
	}
}
