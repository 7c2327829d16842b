package state

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/internal/types"
)

// Named volumes as the cluster knows them (`berth volume`): declared by
// apps, mounted by tasks, their copies placed by the volume pins
// (apply_volume.go); and their removal (`berth volume rm`), which each node
// holding a copy carries out and reports.

// TableVolumeRemovals holds one types.VolumeRemoval per volume being
// removed.
const TableVolumeRemovals = "volume_removals"

func volumeRemovalsSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: TableVolumeRemovals,
		Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
		},
	}
}

// VolumeInfo is one named volume: what its app declares, where the pins put
// its copies, which unfinished tasks mount it.
type VolumeInfo struct {
	Name     string // the Docker volume: "<app>_<key>", or an external one's own name
	App, Key string
	Driver   string // "local" unless the app says otherwise
	External bool
	Pins     []*types.VolumePin // the replicas whose copy is on a known node
	Tasks    []*types.Task      // unfinished tasks that mount it
	Removal  *types.VolumeRemoval
}

// volumes gathers, by Docker name, the named volumes the apps declare or
// mount and those only pins remember (an app gone down without -v).
func volumes(txn *memdb.Txn) map[string]*VolumeInfo {
	out := map[string]*VolumeInfo{}
	type appKey struct{ app, key string }
	byKey := map[appKey]*VolumeInfo{}
	add := func(app *types.App, appName, key string) *VolumeInfo {
		if vol := byKey[appKey{appName, key}]; vol != nil {
			return vol
		}
		vol := &VolumeInfo{Name: appName + "_" + key, App: appName, Key: key, Driver: "local"}
		if app == nil {
			app = &types.App{}
		}
		if d := app.Volumes[key]; d != nil {
			if d.External {
				vol.Name, vol.External = cmpOr(d.Name, key), true
			}
			if d.Driver != "" {
				vol.Driver = d.Driver
			}
		}
		byKey[appKey{appName, key}] = vol
		out[vol.Name] = vol
		return vol
	}
	for _, app := range list[types.App](txn, TableApps, "id") {
		for _, key := range slices.Sorted(maps.Keys(app.Volumes)) {
			add(app, app.Name, key)
		}
		for _, t := range listTasks(txn, TaskFilter{App: app.Name}) {
			svc := app.Service(t.Service)
			if svc == nil || t.State.Terminal() {
				continue
			}
			for _, m := range svc.Mounts {
				if m.Type == types.MountVolume && m.Source != "" {
					vol := add(app, app.Name, m.Source)
					if !slices.Contains(vol.Tasks, t) {
						vol.Tasks = append(vol.Tasks, t)
					}
				}
			}
		}
	}
	for _, p := range list[types.VolumePin](txn, TableVolumePins, "id") {
		for _, key := range p.Volumes {
			vol := add(getApp(txn, p.App), p.App, key)
			vol.Pins = append(vol.Pins, p)
		}
	}
	for _, r := range list[types.VolumeRemoval](txn, TableVolumeRemovals, "id") {
		vol := out[r.Name]
		if vol == nil {
			vol = &VolumeInfo{Name: r.Name, App: r.App, Key: r.Key, Driver: "local"}
			out[r.Name] = vol
		}
		vol.Removal = r
	}
	for _, vol := range out {
		slices.SortFunc(vol.Tasks, compareTasks)
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// RemoveVolume removes a named volume from every node holding a copy
// (`berth volume rm`): its pins go now, each node removes its copy and
// reports VolumeRemoved. Result: the stored *types.VolumeRemoval; an error
// wrapping ErrNotFound when no app has the volume, ErrConflict while a task
// mounts it, ErrInvalid for an external volume.
type RemoveVolume struct {
	Name string    `json:"name"`
	Now  time.Time `json:"now"`
}

// VolumeRemoved records that a node removed its copy of a volume.
// Result: nil (also when there was nothing to record: a report may come
// twice).
type VolumeRemoved struct {
	NodeID string `json:"node_id"`
	Name   string `json:"name"`
}

func (RemoveVolume) kind() commandKind  { return kindRemoveVolume }
func (VolumeRemoved) kind() commandKind { return kindVolumeRemoved }

func (c RemoveVolume) apply(w *writeTxn) (any, error) {
	vol := volumes(w.txn)[c.Name]
	switch {
	case vol == nil || (vol.Removal != nil && len(vol.Pins) == 0 && len(vol.Tasks) == 0):
		if vol != nil {
			return vol.Removal, nil // being removed already
		}
		return nil, fmt.Errorf("volume %s: %w; berth volume ls lists them", c.Name, ErrNotFound)
	case vol.External:
		return nil, invalidf("volume %s is external: berth did not make it and does not remove it; remove it on its node with docker volume rm", c.Name)
	case len(vol.Tasks) > 0:
		names := make([]string, 0, len(vol.Tasks))
		for _, t := range vol.Tasks {
			names = append(names, t.Name())
		}
		return nil, conflictf("volume %s is in use by task %s: stop them first (berth scale, or berth down without -v)", c.Name, strings.Join(names, ", "))
	}
	// A finished task keeps its container (history), and the engine
	// removes no volume a container holds, stopped or not: the finished
	// tasks that mounted it go, and their nodes remove the containers.
	if err := (TaskUpdates{Delete: finishedMounting(w, vol)}).delete(w); err != nil {
		return nil, err
	}
	// Each replica's copy is where its pin says; without pins (a global
	// service's, or one no node took yet) any node may hold one.
	nodes := map[string]bool{}
	for _, p := range vol.Pins {
		nodes[p.NodeID] = true
		if err := unpinVolume(w, p, vol.Key); err != nil {
			return nil, err
		}
	}
	if len(vol.Pins) == 0 {
		for _, n := range list[types.Node](w.txn, TableNodes, "id") {
			nodes[n.ID] = true
		}
	}
	r := &types.VolumeRemoval{Name: vol.Name, App: vol.App, Key: vol.Key, CreatedAt: c.Now, CreateIndex: w.index}
	if vol.Removal != nil {
		for _, id := range vol.Removal.Nodes {
			nodes[id] = first[types.Node](w.txn, TableNodes, "id", id) != nil // a removed node never reports
		}
		maps.DeleteFunc(nodes, func(_ string, live bool) bool { return !live })
		r.CreatedAt, r.CreateIndex = vol.Removal.CreatedAt, vol.Removal.CreateIndex
	}
	r.Nodes = slices.Sorted(maps.Keys(nodes))
	if len(r.Nodes) == 0 {
		return r, nil // no node could hold a copy
	}
	return r, w.insert(TableVolumeRemovals, r)
}

// finishedMounting lists the IDs of the app's finished tasks whose
// service mounts the volume.
func finishedMounting(w *writeTxn, vol *VolumeInfo) []string {
	app := getApp(w.txn, vol.App)
	if app == nil {
		return nil
	}
	var ids []string
	for _, t := range listTasks(w.txn, TaskFilter{App: app.Name}) {
		svc := app.Service(t.Service)
		if svc == nil || !t.State.Terminal() {
			continue
		}
		if slices.ContainsFunc(svc.Mounts, func(m types.Mount) bool { return m.Type == types.MountVolume && m.Source == vol.Key }) {
			ids = append(ids, t.ID)
		}
	}
	return ids
}

// unpinVolume takes key off pin p: the pin goes (deletePins) when it held
// only that volume, else keeps the others.
func unpinVolume(w *writeTxn, p *types.VolumePin, key string) error {
	if len(p.Volumes) == 1 {
		_, err := deletePins(w, p.App, p.Service, p.Slot)
		return err
	}
	c := *p
	c.Volumes = slices.DeleteFunc(slices.Clone(p.Volumes), func(v string) bool { return v == key })
	return w.insert(TableVolumePins, &c)
}

func (c VolumeRemoved) apply(w *writeTxn) (any, error) {
	r := first[types.VolumeRemoval](w.txn, TableVolumeRemovals, "id", c.Name)
	if r == nil || !slices.Contains(r.Nodes, c.NodeID) {
		return nil, nil
	}
	// A node removed from the cluster meanwhile will never report: it
	// leaves the list with this report.
	left := slices.DeleteFunc(slices.Clone(r.Nodes), func(id string) bool {
		return id == c.NodeID || first[types.Node](w.txn, TableNodes, "id", id) == nil
	})
	if len(left) == 0 {
		return nil, w.delete(TableVolumeRemovals, r)
	}
	n := *r
	n.Nodes = left
	return nil, w.insert(TableVolumeRemovals, &n)
}

// Volumes returns every named volume by Docker name.
func (v *View) Volumes() map[string]*VolumeInfo {
	return volumes(v.txn)
}

// VolumeRemovalsOn lists, by name, the volumes node must remove its copy
// of.
func (v *View) VolumeRemovalsOn(node string) []*types.VolumeRemoval {
	var out []*types.VolumeRemoval
	for _, r := range list[types.VolumeRemoval](v.txn, TableVolumeRemovals, "id") {
		if slices.Contains(r.Nodes, node) {
			out = append(out, r)
		}
	}
	return out
}
