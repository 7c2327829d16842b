package state

import (
	"cmp"
	"slices"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/internal/types"
)

// View is a consistent, read-only snapshot of the store. Its methods return
// shared objects: callers must not modify them.
type View struct {
	txn *memdb.Txn
}

// TaskFilter selects tasks; empty fields match all. Service needs App.
type TaskFilter struct {
	App, Service, NodeID string
}

// App returns the named app, or nil.
func (v *View) App(name string) *types.App {
	return getApp(v.txn, name)
}

// Apps returns every app, sorted by name.
func (v *View) Apps() []*types.App {
	return list[types.App](v.txn, TableApps, "id")
}

// Task returns the task with the given ID, or nil.
func (v *View) Task(id string) *types.Task {
	return getTask(v.txn, id)
}

// Tasks returns the tasks matching f, sorted by app, service, slot, node and
// create index.
func (v *View) Tasks(f TaskFilter) []*types.Task {
	tasks := listTasks(v.txn, f)
	if f.App == "" && f.NodeID != "" {
		slices.SortFunc(tasks, compareTasks) // the node index is not in that order
	}
	return tasks
}

// TaskCountsByState counts the tasks in each state without listing or
// sorting them: a metrics scrape of a store of 100,000 tasks sorted them
// all (28% of a leader's CPU scraped once a second).
func (v *View) TaskCountsByState() map[types.TaskState]int {
	out := map[types.TaskState]int{}
	it, err := v.txn.Get(TableTasks, "id")
	if err != nil {
		return out
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out[obj.(*types.Task).State]++
	}
	return out
}

// Node returns the node with the given ID, or nil.
func (v *View) Node(id string) *types.Node {
	return first[types.Node](v.txn, TableNodes, "id", id)
}

// NodeByName returns the node with the given name, or nil. Should two nodes
// share a name, the one with the lowest ID is returned.
func (v *View) NodeByName(name string) *types.Node {
	nodes := list[types.Node](v.txn, TableNodes, "name", name)
	slices.SortFunc(nodes, func(a, b *types.Node) int { return cmp.Compare(a.ID, b.ID) })
	if len(nodes) == 0 {
		return nil
	}
	return nodes[0]
}

// Nodes returns every node, sorted by ID.
func (v *View) Nodes() []*types.Node {
	return list[types.Node](v.txn, TableNodes, "id")
}

// AppWork returns every app's AppWork key, by app name, in one walk of the
// keys (cheaper than an Index call per app). An app without a key (never
// changed since a snapshot from before the keys) is not listed.
func (v *View) AppWork() map[string]uint64 {
	out := map[string]uint64{}
	it, err := v.txn.Get(tableIndex, "id_prefix", appWorkPrefix)
	if err != nil {
		return out
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		e := obj.(*indexEntry)
		out[e.Table[len(appWorkPrefix):]] = e.Index
	}
	return out
}

// Index returns the highest last-modified Raft index of the given tables
// (all tables if none), or 0 if none was ever written.
func (v *View) Index(tables ...string) uint64 {
	if len(tables) == 0 {
		tables = allTables
	}
	idx, _ := maxIndex(v.txn, tables, nil) // errors only for unknown tables: 0
	return idx
}

func compareTasks(a, b *types.Task) int {
	return cmp.Or(
		cmp.Compare(a.App, b.App),
		cmp.Compare(a.Service, b.Service),
		cmp.Compare(a.Slot, b.Slot),
		cmp.Compare(a.NodeID, b.NodeID),
		cmp.Compare(a.CreateIndex, b.CreateIndex),
		cmp.Compare(a.ID, b.ID),
	)
}

func getApp(txn *memdb.Txn, name string) *types.App {
	return first[types.App](txn, TableApps, "id", name)
}

func getTask(txn *memdb.Txn, id string) *types.Task {
	return first[types.Task](txn, TableTasks, "id", id)
}

// listTasks returns the tasks matching f in index order, using the most
// selective index f allows.
func listTasks(txn *memdb.Txn, f TaskFilter) []*types.Task {
	var tasks []*types.Task
	switch {
	case f.App != "" && f.Service != "":
		tasks = list[types.Task](txn, TableTasks, "order", f.App, f.Service)
	case f.App != "":
		tasks = list[types.Task](txn, TableTasks, "order", f.App)
	case f.NodeID != "":
		tasks = list[types.Task](txn, TableTasks, "node", f.NodeID)
	default:
		tasks = list[types.Task](txn, TableTasks, "order")
	}
	return slices.DeleteFunc(tasks, func(t *types.Task) bool {
		return (f.App != "" && t.App != f.App) ||
			(f.Service != "" && t.Service != f.Service) ||
			(f.NodeID != "" && t.NodeID != f.NodeID)
	})
}

// first returns the object of table found by index and args, or nil.
func first[T any](txn *memdb.Txn, table, index string, args ...any) *T {
	obj, err := txn.First(table, index, args...)
	if err != nil || obj == nil {
		return nil // errors mean a bad table or index name: a bug caught by tests
	}
	return obj.(*T)
}

// list returns the objects of table matching index and args, in index order.
func list[T any](txn *memdb.Txn, table, index string, args ...any) []*T {
	it, err := txn.Get(table, index, args...)
	if err != nil {
		return nil // as in first
	}
	var out []*T
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*T))
	}
	return out
}

// Cluster returns the cluster's identity record, or nil before bootstrap.
func (v *View) Cluster() *types.Cluster {
	return first[types.Cluster](v.txn, TableCluster, "id", clusterKey)
}
