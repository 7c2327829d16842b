package state

import (
	"context"
	"fmt"
	"strings"
	"sync"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/internal/ipam"
	"github.com/berth-dev/berth/internal/types"
)

// Store is berth's in-memory state: apps, tasks and nodes in indexed tables.
// Only the FSM writes to it (through Raft); everyone else reads through a
// View and waits for changes with WaitForChange.
//
// Objects read from a Store are shared with every other reader and must be
// treated as read-only: every write stores fresh copies and never mutates an
// object already in the store, so a reader's pointers stay consistent.
type Store struct {
	mu sync.RWMutex
	db *memdb.MemDB
	// abandon is closed when Restore replaces db, so that waiters watching
	// the old database wake up and look again.
	abandon chan struct{}
	// onWait, when set by a test, is called each time WaitForChange is about
	// to block, so the test knows the waiter is really waiting.
	onWait func()
	// events are the recent changes, for `berth events` (events.go).
	events *eventRing
}

// NewStore returns an empty store.
func NewStore() (*Store, error) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("create state store: %w", err)
	}
	if err := seedIndexes(db); err != nil {
		return nil, err
	}
	return &Store{db: db, abandon: make(chan struct{}), events: newEventRing(0)}, nil
}

// seedIndexes gives every table that has no index entry yet one at 0. A
// blocking query watches its tables' entries; memdb's watch for a key
// that does not exist is the nearest node above it in the radix tree,
// which fires for every key under it: with no volume removal ever made,
// every agent's query on its tasks woke on every commit anywhere, found
// nothing of its own and looked again (a fifth of the leader's CPU at
// 1,000 sim nodes; issue 20).
func seedIndexes(db *memdb.MemDB) error {
	txn := db.Txn(true)
	defer txn.Abort()
	for _, t := range allTables {
		obj, err := txn.First(tableIndex, "id", t)
		if err != nil {
			return fmt.Errorf("read index of table %q: %w", t, err)
		}
		if obj == nil {
			if err := txn.Insert(tableIndex, &indexEntry{Table: t}); err != nil {
				return fmt.Errorf("seed index of table %q: %w", t, err)
			}
		}
	}
	txn.Commit()
	return nil
}

// current returns the database and the channel closed when it is replaced.
func (s *Store) current() (*memdb.MemDB, <-chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db, s.abandon
}

// View returns a consistent read snapshot of the whole store. It is cheap
// (no copy is made) and may be kept as long as needed; later writes do not
// show through it.
func (s *Store) View() *View {
	db, _ := s.current()
	return &View{txn: db.Txn(false)}
}

// WaitForChange returns the highest last-modified index of the given tables
// (all tables if none) as soon as it is greater than after. Until then it
// blocks; when ctx is done first it returns the current index and ctx.Err().
func (s *Store) WaitForChange(ctx context.Context, tables []string, after uint64) (uint64, error) {
	if len(tables) == 0 {
		tables = allTables
	}
	for _, t := range tables {
		if !knownKey(t) {
			return 0, fmt.Errorf("wait for changes: unknown table %q", t)
		}
	}
	for {
		db, abandon := s.current()
		ws := memdb.NewWatchSet()
		ws.Add(abandon)
		idx, err := maxIndex(db.Txn(false), tables, ws)
		if err != nil {
			return 0, err
		}
		if idx > after {
			return idx, nil
		}
		if s.onWait != nil {
			s.onWait()
		}
		if err := ws.WatchCtx(ctx); err != nil {
			return idx, ctx.Err()
		}
	}
}

// Stats counts the objects in the store, for metrics.
type Stats struct {
	Apps, Tasks, Nodes int
}

// Stats returns the current object counts.
func (s *Store) Stats() Stats {
	v := s.View()
	return Stats{
		Apps:  count(v.txn, TableApps),
		Tasks: count(v.txn, TableTasks),
		Nodes: count(v.txn, TableNodes),
	}
}

func count(txn *memdb.Txn, table string) int {
	it, err := txn.Get(table, "id")
	if err != nil {
		return 0
	}
	n := 0
	for obj := it.Next(); obj != nil; obj = it.Next() {
		n++
	}
	return n
}

// maxIndex returns the highest last-modified index of tables, adding a
// watch for each of their index entries to ws when ws is not nil.
func maxIndex(txn *memdb.Txn, tables []string, ws memdb.WatchSet) (uint64, error) {
	var highest uint64
	for _, t := range tables {
		ch, obj, err := txn.FirstWatch(tableIndex, "id", t)
		if err != nil {
			return 0, fmt.Errorf("read index of table %q: %w", t, err)
		}
		if obj == nil && strings.HasPrefix(t, nodeTasksPrefix) {
			// No change to the node's tasks yet: the tasks table's
			// index stands in (it is never lower than the node's
			// key will be), and the key's own channel, in the set
			// already, wakes the waiter on the node's first change.
			if ws != nil {
				ws.Add(ch)
			}
			ch, obj, err = txn.FirstWatch(tableIndex, "id", TableTasks)
			if err != nil {
				return 0, fmt.Errorf("read index of table %q: %w", TableTasks, err)
			}
			if ws != nil {
				ws.Add(ch)
			}
			ch = nil
		}
		if ws != nil && ch != nil {
			ws.Add(ch)
		}
		if obj == nil && strings.HasPrefix(t, appWorkPrefix) {
			// No key (a purged app, or a snapshot from before the
			// keys): the tables the key follows stand in.
			if ws != nil {
				ws.Add(ch)
			}
			idx, err := maxIndex(txn, appWorkTables, ws)
			if err != nil {
				return 0, err
			}
			highest = max(highest, idx)
			continue
		}
		if e, ok := obj.(*indexEntry); ok && e.Index > highest {
			highest = e.Index
		}
	}
	return highest, nil
}

// write runs fn in one write transaction stamped with the Raft index. If fn
// fails nothing is committed; otherwise the index of every table fn touched
// is set to index.
func (s *Store) write(index uint64, fn func(w *writeTxn) (any, error)) (any, error) {
	db, _ := s.current()
	w := &writeTxn{txn: db.Txn(true), index: index, touched: map[string]bool{}}
	defer w.txn.Abort() // no-op after Commit
	w.txn.TrackChanges()
	res, err := fn(w)
	if err != nil {
		return nil, err
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	ring := s.events
	s.mu.RUnlock()
	ring.add(eventsOf(index, w.txn.Changes()))
	return res, nil
}

// replace swaps in db as the store's contents and wakes every waiter.
func (s *Store) replace(db *memdb.MemDB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Indexes never go back: a restored snapshot (a user's restore of an
	// older state, say) gets every table's index past what this store had
	// served, so blocking queries waiting past an old index see the change
	// at once instead of at the end of their wait.
	prev, _ := maxIndex(s.db.Txn(false), allTables, nil)
	restored, _ := maxIndex(db.Txn(false), allTables, nil)
	if prev >= restored {
		txn := db.Txn(true)
		for _, t := range allTables {
			if err := txn.Insert(tableIndex, &indexEntry{Table: t, Index: prev + 1}); err != nil {
				txn.Abort()
				panic(fmt.Sprintf("state: bump index of %s after restore: %v", t, err))
			}
		}
		txn.Commit()
	}
	s.db = db
	// What happened before the restored state is not known here.
	s.events.retire()
	s.events = newEventRing(max(prev, restored))
	close(s.abandon)
	s.abandon = make(chan struct{})
}

// writeTxn is a memdb write transaction that remembers which tables it
// modified, so that commit can bump their indexes.
type writeTxn struct {
	txn     *memdb.Txn
	index   uint64
	touched map[string]bool
	// reportsOnly: the transaction applies agents' reports and nothing
	// else (TaskStatusUpdate, TaskStatusBatch); see markNodeTasks.
	reportsOnly bool
}

func (w *writeTxn) insert(table string, obj any) error {
	w.touched[table] = true
	if err := w.txn.Insert(table, obj); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return nil
}

func (w *writeTxn) delete(table string, obj any) error {
	w.touched[table] = true
	if err := w.txn.Delete(table, obj); err != nil {
		return fmt.Errorf("delete from %s: %w", table, err)
	}
	return nil
}

func (w *writeTxn) commit() error {
	for t := range w.touched {
		if err := w.txn.Insert(tableIndex, &indexEntry{Table: t, Index: w.index}); err != nil {
			return fmt.Errorf("update index of %s: %w", t, err)
		}
	}
	if w.touched[TableTasks] || w.touched[TableNetPool] || w.touched[TableApps] {
		if err := w.markNodeTasks(); err != nil {
			return err
		}
	}
	if w.touched[TableTasks] || w.touched[TableApps] || w.touched[TableDeployments] || w.touched[TableVolumePins] {
		if err := w.markApps(); err != nil {
			return err
		}
	}
	w.txn.Commit()
	return nil
}

// ownNews reports whether a change is a node's own report of a task that
// goes on (starting, running, a health change): the node's blocking query
// is not woken for it, since the agent knows what it reported and no work
// of the node changed. At 100 tasks a node, each report woke its agent to
// fetch and decode its whole task list again, only to learn what it had
// just said (issue 20). A final state still wakes it: the agent waits for
// the manager to hold its tasks' final states before it reports an app's
// teardown, and the replacement comes in a later entry anyway.
func (w *writeTxn) ownNews(ch memdb.Change) bool {
	if !w.reportsOnly || ch.Created() || ch.Deleted() {
		return false
	}
	t, ok := ch.After.(*types.Task)
	return ok && !t.State.Terminal()
}

// markNodeTasks moves the NodeTasks key of every node a task of this
// transaction was on, before or after, of every node whose slice of a
// network it changed, and of every node an app it changed concerns, to the
// transaction's index. A node's work names its own slices and the apps of
// its own tasks, so a node's blocking query needs no watch of the whole
// pool, which each node's first slice of a network changes (at 1,000 nodes
// every slice a placement took woke all 1,000 agents to rebuild their
// lists), nor of the whole apps table, which every deploy writes (300 apps
// deployed one after another each woke every agent to fetch and encode all
// its tasks of every app: the 300th deploy took 1.4 times the first).
func (w *writeTxn) markNodeTasks() error {
	nodes := map[string]bool{}
	all := false
	for _, ch := range w.txn.Changes() {
		switch {
		case ch.Table == TableTasks && !w.ownNews(ch):
			for _, obj := range []any{ch.Before, ch.After} {
				if t, ok := obj.(*types.Task); ok && t.NodeID != "" {
					nodes[t.NodeID] = true
				}
			}
		case ch.Table == TableNetPool:
			ipam.SliceChanges(poolOf(ch.Before), poolOf(ch.After), nodes)
		case ch.Table == TableApps && !all:
			var err error
			if all, err = w.appConcerns(ch, nodes); err != nil {
				return err
			}
		}
	}
	if all {
		it, err := w.txn.Get(TableNodes, "id")
		if err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			nodes[obj.(*types.Node).ID] = true
		}
	}
	for id := range nodes {
		if err := w.markNode(id); err != nil {
			return err
		}
	}
	return nil
}

// appConcerns adds to nodes those an app change concerns: the nodes of the
// app's tasks (their specs, secrets and networks come with the app). It
// reports all when every node is concerned: an app being removed (or
// removed) is listed to every node until it reports the teardown, since
// any node may hold its networks and volumes.
//
// A write that changes nothing an agent is given (a service's status, its
// replica count, the app's version and times) concerns no node: the
// reconciler records services' statuses on every pass of a deploy, and
// finding the nodes of a 100,000-task app on each of those, on every
// manager, doubled the FSM's time.
func (w *writeTxn) appConcerns(ch memdb.Change, nodes map[string]bool) (all bool, err error) {
	before, _ := ch.Before.(*types.App)
	after, _ := ch.After.(*types.App)
	if after == nil || after.Deleting || before != nil && before.Deleting {
		return true, nil
	}
	if before != nil && jsonEqual(agentsPart(before), agentsPart(after)) {
		return false, nil
	}
	it, err := w.txn.Get(TableTasks, "order", after.Name)
	if err != nil {
		return false, fmt.Errorf("list the tasks of app %s: %w", after.Name, err)
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if t := obj.(*types.Task); t.NodeID != "" {
			nodes[t.NodeID] = true
		}
	}
	return false, nil
}

// agentsPart is what of an app its nodes' agents are given (with the
// app's tasks, server/nodes.go buildNodeTasks): the services' specs
// without their status and replica count, the networks, volumes, secrets
// and configs.
func agentsPart(a *types.App) any {
	svcs := make([]types.Service, len(a.Services))
	for i, s := range a.Services {
		svcs[i] = *s
		svcs[i].Status, svcs[i].Replicas = nil, 0
	}
	return struct {
		Services []types.Service
		Networks map[string]*types.Network
		Volumes  map[string]*types.Volume
		Secrets  map[string]*types.Secret
		Configs  map[string]*types.Secret
	}{svcs, a.Networks, a.Volumes, a.Secrets, a.Configs}
}

// poolOf is the pool a change of TableNetPool holds, nil for none.
func poolOf(obj any) *ipam.Pool {
	if rec, ok := obj.(*NetPool); ok {
		return rec.Pool
	}
	return nil
}

// markApps moves the AppWork key of every app whose record, tasks,
// deployments or volume pins this transaction changed, and deletes the
// key of an app it removed.
func (w *writeTxn) markApps() error {
	apps := map[string]bool{} // app -> this transaction removed it
	mark := func(name string) {
		if _, ok := apps[name]; !ok {
			apps[name] = false
		}
	}
	for _, ch := range w.txn.Changes() {
		for _, obj := range []any{ch.Before, ch.After} {
			switch o := obj.(type) {
			case *types.Task:
				mark(o.App)
			case *types.App:
				mark(o.Name)
				apps[o.Name] = apps[o.Name] || ch.Deleted()
			case *types.Deployment:
				mark(o.App)
			case *types.VolumePin:
				mark(o.App)
			}
		}
	}
	for name, removed := range apps {
		if removed {
			if _, err := w.txn.DeleteAll(tableIndex, "id", AppWork(name)); err != nil {
				return fmt.Errorf("delete the index of app %s: %w", name, err)
			}
			continue
		}
		if err := w.txn.Insert(tableIndex, &indexEntry{Table: AppWork(name), Index: w.index}); err != nil {
			return fmt.Errorf("update index of app %s: %w", name, err)
		}
	}
	return nil
}

// markNode moves node id's NodeTasks key to the transaction's index.
func (w *writeTxn) markNode(id string) error {
	if err := w.txn.Insert(tableIndex, &indexEntry{Table: NodeTasks(id), Index: w.index}); err != nil {
		return fmt.Errorf("update index of node %s's tasks: %w", id, err)
	}
	return nil
}
