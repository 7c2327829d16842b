package state

import (
	"errors"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// pinApp is an app whose db service mounts the named volume "data" and an
// anonymous one; api mounts nothing.
func pinApp() *types.App {
	app := testApp()
	app.Volumes = map[string]*types.Volume{"data": {Name: "data"}}
	app.Services[1].Replicas = 2
	app.Services[1].Mounts = []types.Mount{
		{Type: types.MountVolume, Source: "data", Target: "/var/lib/db"},
		{Type: types.MountVolume, Target: "/tmp/scratch"},
	}
	return app
}

func pinIDs(v *View) []string {
	var ids []string
	for _, p := range v.VolumePins("web") {
		ids = append(ids, p.ID+"@"+p.NodeID)
	}
	return ids
}

// TestVolumePinLifecycle: the first placement of a slot with a named volume
// pins it, in the same entry; a later placement elsewhere does not move it;
// the pin survives `down` and snapshots; unpin and `down -v` remove it.
func TestVolumePinLifecycle(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: pinApp(), Now: t0})
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("a1", "api", 1), testTask("d1", "db", 1), testTask("d2", "db", 2)}, Now: t0})
	h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "a1", NodeID: "n1"}, {TaskID: "d1", NodeID: "n1"}, {TaskID: "d2", NodeID: "n2"}}, Now: t0})
	v := h.store.View()
	if got, want := pinIDs(v), []string{"web/db.1@n1", "web/db.2@n2"}; !slices.Equal(got, want) {
		t.Fatalf("pins = %v, want %v (api mounts no named volume)", got, want)
	}
	if p := v.VolumePin("web", "db", 1); !slices.Equal(p.Volumes, []string{"data"}) || p.Replica() != "db.1" {
		t.Fatalf("pin = %+v, want volumes [data] of db.1", p)
	}

	// A stale plan placing slot 1 elsewhere does not move its pin.
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("d1b", "db", 1)}, Now: t0})
	h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "d1b", NodeID: "n3"}}, Now: t0})
	if p := h.store.View().VolumePin("web", "db", 1); p.NodeID != "n1" {
		t.Fatalf("pin of db.1 moved to %s by a placement", p.NodeID)
	}

	// `down` without -v keeps the pins, and snapshots carry them.
	h.mustApply(&DeleteApp{Name: "web"})
	h.mustApply(PurgeApp{Name: "web"})
	dst := newHarness(t)
	if err := dst.fsm.Restore(ioNopCloser(snapshotOf(t, h.fsm))); err != nil {
		t.Fatal(err)
	}
	if got := pinIDs(dst.store.View()); len(got) != 2 {
		t.Fatalf("pins after down and a snapshot restore = %v, want both", got)
	}

	if _, err := dst.apply(UnpinVolumes{App: "web", Service: "db", Slot: 3}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unpin of an unpinned slot: %v, want ErrNotFound", err)
	}
	res := dst.mustApply(UnpinVolumes{App: "web", Service: "db", Slot: 2}).([]*types.VolumePin)
	if len(res) != 1 || res[0].NodeID != "n2" {
		t.Fatalf("unpin returned %+v, want db.2's pin on n2", res)
	}
	if got := pinIDs(dst.store.View()); !slices.Equal(got, []string{"web/db.1@n1"}) {
		t.Fatalf("pins after unpin db.2 = %v", got)
	}

	// `down -v` removes the volumes and their pins.
	dst.mustApply(UpsertApp{App: pinApp(), Now: t0})
	dst.mustApply(&DeleteApp{Name: "web", Volumes: true})
	dst.mustApply(PurgeApp{Name: "web"})
	if got := pinIDs(dst.store.View()); len(got) != 0 {
		t.Fatalf("pins after down -v = %v, want none", got)
	}
}

func TestPinnedVolumes(t *testing.T) {
	app := pinApp()
	app.Volumes["nfs"] = &types.Volume{Name: "nfs", Driver: "nfs"}
	db := app.Services[1]
	db.Mounts = append(db.Mounts,
		types.Mount{Type: types.MountVolume, Source: "nfs", Target: "/nfs"},
		types.Mount{Type: types.MountVolume, Source: "data", Target: "/again"},
		types.Mount{Type: types.MountBind, Source: "/host", Target: "/host"})
	if got := db.PinnedVolumes(app); !slices.Equal(got, []string{"data"}) {
		t.Fatalf("PinnedVolumes = %v, want [data]", got)
	}
	db.Mode = types.ModeGlobal
	if got := db.PinnedVolumes(app); got != nil {
		t.Fatalf("PinnedVolumes of a global service = %v, want none", got)
	}
}
