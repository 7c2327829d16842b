package state

import (
	"fmt"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/internal/types"
)

// Volume pins: which node holds a replica's named volumes (see
// types.VolumePin). A pin is made in the same entry that first places the
// slot, so no placement can ever race ahead of it, and is removed only by
// UnpinVolumes or `down -v`.

func volumePinsSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: TableVolumePins,
		Indexes: map[string]*memdb.IndexSchema{
			"id":   {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			"app":  {Name: "app", Indexer: &memdb.StringFieldIndex{Field: "App"}},
			"node": {Name: "node", Indexer: &memdb.StringFieldIndex{Field: "NodeID"}},
		},
	}
}

// UnpinVolumes forgets where replicas' volumes are (`berth service unpin`),
// so each one's next placement may pick any node, where its volumes start
// empty; the data stays on the old node. Slot 0 means every slot of the
// service. Result: the removed []*types.VolumePin; an error wrapping
// ErrNotFound when nothing matched.
type UnpinVolumes struct {
	App     string `json:"app"`
	Service string `json:"service"`
	Slot    int    `json:"slot,omitempty"`
}

func (UnpinVolumes) kind() commandKind { return kindUnpinVolumes }

func (c UnpinVolumes) apply(w *writeTxn) (any, error) {
	if c.App == "" || c.Service == "" {
		return nil, fmt.Errorf("unpin volumes: app and service are required")
	}
	removed, err := deletePins(w, c.App, c.Service, c.Slot)
	if err != nil {
		return nil, err
	}
	if len(removed) == 0 {
		what := "service " + c.Service
		if c.Slot > 0 {
			what = fmt.Sprintf("replica %s.%d", c.Service, c.Slot)
		}
		return nil, fmt.Errorf("%s of app %s has no pinned volume: %w", what, c.App, ErrNotFound)
	}
	return removed, nil
}

// deletePins removes the app's pins, of one service (or all: "") and one
// slot (or all: 0), and returns them.
func deletePins(w *writeTxn, app, service string, slot int) ([]*types.VolumePin, error) {
	var removed []*types.VolumePin
	for _, p := range list[types.VolumePin](w.txn, TableVolumePins, "app", app) {
		if (service != "" && p.Service != service) || (slot > 0 && p.Slot != slot) {
			continue
		}
		if err := w.delete(TableVolumePins, p); err != nil {
			return nil, err
		}
		removed = append(removed, p)
	}
	return removed, nil
}

// pinOnAssign pins the slot of a task just assigned to its node when its
// service mounts named volumes and the slot has no pin yet. A slot already
// pinned elsewhere keeps its pin (the placement was planned before a newer
// pin); one pinned here has its volume list brought up to date.
func pinOnAssign(w *writeTxn, a Assignment, now time.Time) error {
	t := getTask(w.txn, a.TaskID)
	if t == nil || t.State != types.TaskAssigned || t.NodeID != a.NodeID || t.Slot == 0 {
		return nil
	}
	app := getApp(w.txn, t.App)
	if app == nil {
		return nil
	}
	svc := app.Service(t.Service)
	if svc == nil {
		return nil
	}
	vols := svc.PinnedVolumes(app)
	if len(vols) == 0 {
		return nil
	}
	id := types.VolumePinID(t.App, t.Service, t.Slot)
	old := first[types.VolumePin](w.txn, TableVolumePins, "id", id)
	switch {
	case old == nil:
		return w.insert(TableVolumePins, &types.VolumePin{ID: id, App: t.App, Service: t.Service, Slot: t.Slot,
			NodeID: t.NodeID, Volumes: vols, CreatedAt: now, CreateIndex: w.index})
	case old.NodeID == t.NodeID && !slices.Equal(old.Volumes, vols):
		p := *old
		p.Volumes = vols
		return w.insert(TableVolumePins, &p)
	}
	return nil
}

// VolumePin returns the pin of one slot, or nil.
func (v *View) VolumePin(app, service string, slot int) *types.VolumePin {
	return first[types.VolumePin](v.txn, TableVolumePins, "id", types.VolumePinID(app, service, slot))
}

// VolumePins returns the app's pins (every app's when app is ""), sorted by
// ID.
func (v *View) VolumePins(app string) []*types.VolumePin {
	if app == "" {
		return list[types.VolumePin](v.txn, TableVolumePins, "id")
	}
	return list[types.VolumePin](v.txn, TableVolumePins, "app", app)
}
