package agent

import (
	"context"
	"sync"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// op is the driver call in flight for a task.
type op int

const (
	opNone op = iota
	opStart
	opStop
	opRemove
)

// taskRecord is the loop's view of one task: what the manager wants (in
// the latest NodeTasks), what the driver last showed, and what was reported.
type taskRecord struct {
	id    string
	local localTask // kept in the store once the task is started

	status   *driver.Status // last driver observation; nil if none
	vanished bool           // the driver stopped listing the task
	removed  bool           // Remove succeeded while the manager still lists it
	stopped  bool           // Stop succeeded
	startErr string         // why the start failed (the task is rejected)

	busy    op
	retryAt time.Time // after a failed driver call

	reported *types.TaskStatus // last status queued for the manager
	final    bool              // a terminal state was queued: nothing follows
}

// outcome is the result of a driver call made off the loop.
type outcome struct {
	taskID string
	op     op
	status *driver.Status
	err    error
}

// taskProgress is a driver's word on a start in progress.
type taskProgress struct {
	taskID, msg string
}

// teardown tracks the removal of a deleted app's leftovers on this node.
type teardown struct {
	busy, done bool
	retryAt    time.Time
	// since is the first attempt: removal that keeps failing is given up
	// after Timing.TeardownGiveUp, so `berth down` cannot hang on the engine.
	since time.Time
}

// loop owns every task record; only its goroutine touches them. Driver
// calls run on worker goroutines that hand their outcome back to it.
type loop struct {
	a     *Agent
	store *store
	rep   *reporter

	desiredCh  chan *api.NodeTasks
	statusCh   chan driverStatus
	progressCh chan taskProgress
	results    chan outcome
	tdResults  chan tdOutcome

	desired   *api.NodeTasks
	listed    bool
	tasks     map[string]*taskRecord
	teardowns map[string]*teardown
	starts    int // starts in flight
	stops     int // stops and removes in flight
	workers   sync.WaitGroup

	// `berth volume rm` on this node (volumes.go), made on first use.
	volRemovals map[string]*teardown
	vrResults   chan vrOutcome
}

func newLoop(a *Agent, st *store, rep *reporter) *loop {
	return &loop{
		a:          a,
		store:      st,
		rep:        rep,
		desiredCh:  make(chan *api.NodeTasks, 1),
		statusCh:   make(chan driverStatus, 64),
		progressCh: make(chan taskProgress, 64),
		results:    make(chan outcome),
		tdResults:  make(chan tdOutcome),
		tasks:      map[string]*taskRecord{},
		teardowns:  map[string]*teardown{},
	}
}

// run handles one message at a time, then reconciles, until ctx is done.
func (l *loop) run(ctx context.Context) {
	defer l.workers.Wait()
	l.loadLocal()
	l.poll(ctx)
	tick := time.NewTicker(l.a.timing.PollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case nt := <-l.desiredCh:
			l.desired = nt
		case ds := <-l.statusCh:
			l.observe(ds.driver, ds.status)
		case p := <-l.progressCh:
			l.applyProgress(p)
		case o := <-l.results:
			l.finish(o)
		case o := <-l.tdResults:
			l.finishTeardown(o)
		case o := <-l.vrResults:
			l.finishVolumeRemoval(o)
		case <-l.a.resync:
			l.forgetReports()
		case <-tick.C:
			l.poll(ctx)
		}
		l.reconcile(ctx)
	}
}

// loadLocal brings back what a previous run of the agent remembered.
func (l *loop) loadLocal() {
	saved, err := l.store.Tasks()
	if err != nil {
		l.a.log.Error("read local task state; stop settings of old tasks fall back to defaults", "err", err)
		return
	}
	for id, lt := range saved {
		l.tasks[id] = &taskRecord{id: id, local: lt}
	}
}

// record returns the task's record, making an empty one.
func (l *loop) record(id string) *taskRecord {
	r := l.tasks[id]
	if r == nil {
		r = &taskRecord{id: id}
		l.tasks[id] = r
	}
	return r
}

// observe records a driver's status of a task. Driver states only move
// forward, so a late event cannot undo a newer listing.
func (l *loop) observe(driverName string, st *driver.Status) {
	if st == nil || st.TaskID == "" {
		return
	}
	r := l.record(st.TaskID)
	if r.local.Driver == "" {
		r.local.Driver = driverName
		r.local.App, r.local.Service = st.App, st.Service
	}
	if r.status != nil && driverRank(st.State) < driverRank(r.status.State) {
		return
	}
	r.status, r.vanished = st, false
}

// poll lists every driver's tasks: the first time to re-attach to what a
// previous run started, then to catch changes whose event was missed.
func (l *loop) poll(ctx context.Context) {
	for name, d := range l.a.drivers {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		list, err := d.List(lctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				l.a.log.Warn("list driver tasks failed", "driver", name, "err", err)
			}
			continue
		}
		l.applyList(name, list)
	}
	l.listed = true
}

func (l *loop) applyList(driverName string, list []*driver.Status) {
	seen := make(map[string]bool, len(list))
	for _, st := range list {
		seen[st.TaskID] = true
		l.observe(driverName, st)
	}
	for id, r := range l.tasks {
		if r.local.Driver != driverName || r.status == nil || seen[id] || r.busy != opNone {
			continue
		}
		r.status, r.vanished = nil, true
	}
}

// forgetReports makes every current state be reported again, after the
// manager lost track of this node.
func (l *loop) forgetReports() {
	for _, r := range l.tasks {
		r.reported, r.final = nil, false
	}
}

// report queues a task's status unless it is no news: the manager already
// holds a terminal state, the same status was queued, or it would move the
// task backwards.
func (l *loop) report(t *types.Task, r *taskRecord, ts types.TaskStatus) {
	if r.final || t.State.Terminal() || rank(ts.State) < rank(t.State) {
		return
	}
	if p := r.reported; p != nil && (sameStatus(*p, ts) || rank(ts.State) < rank(p.State)) {
		return
	}
	ts.TaskID = t.ID
	r.reported, r.final = &ts, ts.State.Terminal()
	l.rep.Add(ts)
}

// send hands an outcome to the loop unless the agent is stopping.
func (l *loop) send(ctx context.Context, o outcome) {
	select {
	case l.results <- o:
	case <-ctx.Done():
	}
}
