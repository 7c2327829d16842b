package state

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// TestRemoveVolume: rm is refused while a task mounts the volume (naming
// it), for an external volume and for one no app has; once the tasks
// ended it unpins the volume (keeping a pin's other volumes) and asks the
// pinned nodes to remove their copies; each node's report takes it off the
// list, and the last removes the record; a snapshot carries it.
func TestRemoveVolume(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"n1", "n2", "n3"} {
		h.mustApply(UpsertNode{Node: testNode(id)})
	}
	app := pinApp()
	app.Volumes["logs"] = &types.Volume{Name: "logs"}
	app.Volumes["corp"] = &types.Volume{Name: "corp-data", External: true}
	app.Services[1].Mounts = append(app.Services[1].Mounts, types.Mount{Type: types.MountVolume, Source: "logs", Target: "/logs"})
	h.mustApply(UpsertApp{App: app, Now: t0})
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("d1", "db", 1), testTask("d2", "db", 2)}, Now: t0})
	h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "d1", NodeID: "n1"}, {TaskID: "d2", NodeID: "n2"}}, Now: t0})

	for _, tc := range []struct {
		name string
		want error
		msg  string
	}{
		{"web_data", ErrConflict, "volume web_data is in use by task web-db-1, web-db-2"},
		{"corp-data", ErrInvalid, "volume corp-data is external"},
		{"nope", ErrNotFound, "volume nope"},
	} {
		_, err := h.apply(RemoveVolume{Name: tc.name, Now: t0})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("rm %s: %v, want %v saying %q", tc.name, err, tc.want, tc.msg)
		}
	}

	h.mustApply(TaskStatusUpdate{NodeID: "n1", Statuses: []types.TaskStatus{{TaskID: "d1", State: types.TaskComplete}}, Now: t0})
	h.mustApply(TaskStatusUpdate{NodeID: "n2", Statuses: []types.TaskStatus{{TaskID: "d2", State: types.TaskComplete}}, Now: t0})
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("a1", "api", 1)}, Now: t0})
	res := h.mustApply(RemoveVolume{Name: "web_data", Now: t0}).(*types.VolumeRemoval)
	if v := h.store.View(); v.Task("d1") != nil || v.Task("d2") != nil || v.Task("a1") == nil {
		t.Errorf("after rm the finished tasks that mounted the volume stay (their containers would hold it), or api's went")
	}
	if !slices.Equal(res.Nodes, []string{"n1", "n2"}) || res.App != "web" || res.Key != "data" {
		t.Fatalf("removal %+v, want web's data on n1 and n2", res)
	}
	v := h.store.View()
	for _, p := range v.VolumePins("web") {
		if !slices.Equal(p.Volumes, []string{"logs"}) {
			t.Errorf("pin %s keeps %v, want logs only", p.ID, p.Volumes)
		}
	}
	if got := v.VolumeRemovalsOn("n2"); len(got) != 1 || got[0].Name != "web_data" {
		t.Errorf("n2 must remove %v", got)
	}
	// Asked again, it stays one removal.
	h.mustApply(RemoveVolume{Name: "web_data", Now: t0})

	dst := newHarness(t)
	if err := dst.fsm.Restore(ioNopCloser(snapshotOf(t, h.fsm))); err != nil {
		t.Fatal(err)
	}
	if got := dst.store.View().VolumeRemovalsOn("n1"); len(got) != 1 {
		t.Errorf("restored removals on n1: %v", got)
	}

	h.mustApply(VolumeRemoved{NodeID: "n1", Name: "web_data"})
	h.mustApply(VolumeRemoved{NodeID: "n1", Name: "web_data"}) // twice: nothing more
	if r := h.store.View().Volumes()["web_data"].Removal; r == nil || !slices.Equal(r.Nodes, []string{"n2"}) {
		t.Fatalf("after n1's report: %+v, want n2 left", r)
	}
	h.mustApply(VolumeRemoved{NodeID: "n2", Name: "web_data"})
	v = h.store.View()
	if r := v.Volumes()["web_data"]; r == nil || r.Removal != nil || len(r.Pins) != 0 {
		t.Errorf("after the last report: %+v, want the declared volume, no removal, no pins", r)
	}

	// A pin that held only the removed volume goes with it; a node removed
	// from the cluster leaves the list with the next report.
	h.mustApply(RemoveVolume{Name: "web_logs", Now: t0})
	if got := h.store.View().VolumePins("web"); len(got) != 0 {
		t.Errorf("pins left %v", got)
	}
	h.mustApply(DeleteNode{ID: "n2", Now: t0})
	h.mustApply(VolumeRemoved{NodeID: "n1", Name: "web_logs"})
	if r := h.store.View().Volumes()["web_logs"].Removal; r != nil {
		t.Errorf("removal %+v waits for a removed node", r)
	}
}
