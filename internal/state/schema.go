package state

import (
	"slices"
	"strings"

	memdb "github.com/hashicorp/go-memdb"
)

// Table names, as given to Index and WaitForChange.
const (
	TableApps  = "apps"
	TableTasks = "tasks"
	TableNodes = "nodes"
	// TableCluster holds the one types.Cluster record.
	TableCluster = "cluster"
	// TableVolumePins holds one types.VolumePin per pinned replica.
	TableVolumePins = "volume_pins"
	// TableMachines holds one types.Machine per host berth made.
	TableMachines = "machines"
	// TableImages holds one types.Image per image the registry holds.
	TableImages = "images"
)

// tableIndex is the memdb table that records, per table, the Raft index of
// the last write that modified it. Blocking queries wait on its entries.
const tableIndex = "index"

// allTables are the tables Index and WaitForChange consider when given none.
var allTables = []string{TableApps, TableTasks, TableNodes, TableCluster, TableVolumePins, TableMachines, TableImages, TableNetPool, TableDeployments,
	TableNetworks, TableVolumeRemovals}

// NodeTasks is the key, for Index and WaitForChange beside table names, of
// one node's work: it moves only when a task placed on the node (or moved
// off it) changes, the node's own slice of a network, an app of the node's
// tasks, or any app being removed. An agent's blocking query waits on it, so a task change
// wakes the agent that runs the task instead of every agent in the
// cluster. A node whose tasks have not changed since the key came in
// answers with the tasks table's index.
func NodeTasks(nodeID string) string { return nodeTasksPrefix + nodeID }

const nodeTasksPrefix = TableTasks + "/node/"

// NodeWork is what an agent's blocking query for its work waits on: its
// node's key (which moves for the node's tasks, its own slices of the
// networks, the apps of its tasks and every app being removed) and volume
// removals. Not the tasks, pool or apps tables: a task placed, a slice
// taken or an app deployed elsewhere would wake every agent in the cluster.
func NodeWork(nodeID string) []string {
	return []string{NodeTasks(nodeID), TableVolumeRemovals}
}

// AppWork is the key, for Index beside table names, of one app's state as
// the reconciler reads it: it moves with every change of the app's record,
// of its tasks (agents' reports of them too), its deployments and its
// volume pins. The reconciler visits the apps whose key moved since its
// last look instead of every app on every change: with 300 apps deployed
// one after another, a pass over all of them for each report of each new
// replica was 38% of the leader's CPU and the 300th deploy took 1.9 times
// the first (issue 20). A purged app's key is deleted; an app without one
// (a snapshot from before the key) answers with the highest index of the
// tables the key follows, which is never lower than the key would be.
func AppWork(app string) string { return appWorkPrefix + app }

const appWorkPrefix = TableApps + "/work/"

// appWorkTables are the tables whose changes move an app's AppWork key.
var appWorkTables = []string{TableApps, TableTasks, TableDeployments, TableVolumePins}

// knownKey reports whether Index and WaitForChange take key.
func knownKey(key string) bool {
	return slices.Contains(allTables, key) ||
		strings.HasPrefix(key, nodeTasksPrefix) && len(key) > len(nodeTasksPrefix) ||
		strings.HasPrefix(key, appWorkPrefix) && len(key) > len(appWorkPrefix)
}

// indexEntry is one row of tableIndex.
type indexEntry struct {
	Table string `json:"table"`
	Index uint64 `json:"index"`
}

func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		TableApps: {
			Name: TableApps,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
		TableTasks: {
			Name: TableTasks,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
				// "order" lists an app's or a service's tasks in
				// compareTasks's order (taskorder.go).
				"order": {Name: "order", Unique: true, Indexer: taskOrder{}},
				// Pending tasks have no node yet.
				"node": {Name: "node", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "NodeID"}},
			},
		},
		TableNodes: {
			Name: TableNodes,
			Indexes: map[string]*memdb.IndexSchema{
				"id":   {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
				"name": {Name: "name", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
		TableCluster: {
			Name: TableCluster,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			},
		},
		TableVolumePins:  volumePinsSchema(),
		TableMachines:    machinesSchema(),
		TableImages:      imagesSchema(),
		TableNetPool:     netPoolSchema(),
		TableDeployments: deploymentsSchema(),

		TableNetworks:       networksSchema(),
		TableVolumeRemovals: volumeRemovalsSchema(),
		tableIndex: {
			Name: tableIndex,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Table"}},
			},
		},
	}}
}
