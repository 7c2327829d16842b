package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// Clock is the time source; tests drive a fake one.
type Clock interface{ Now() time.Time }

// RealClock reads the system clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Store is what controllers read.
type Store interface {
	View() *state.View
	WaitForChange(ctx context.Context, tables []string, after uint64) (uint64, error)
}

// Committer commits one command through Raft and returns the FSM's result.
type Committer interface {
	Commit(ctx context.Context, cmd state.Command) (any, error)
}

// PlanApplier re-checks a scheduler plan against fresh state and commits it.
type PlanApplier interface {
	ApplyPlan(ctx context.Context, p scheduler.Plan) error
}

// Reconciler keeps tasks in line with apps. See the package doc.
type Reconciler struct {
	store   Store
	commit  Committer
	applier PlanApplier
	clock   Clock
	log     *slog.Logger
	// HistoryPerSlot is how many finished tasks a slot keeps for ps -a and logs.
	HistoryPerSlot int
	// NewID makes task IDs; tests may make them predictable.
	NewID func() string
	// sched is the scheduler's view, kept in step with the store (view.go).
	sched schedView
	// marks say which apps the next pass visits (marks.go).
	marks marks
	// OnPass, when set, is told of every pass that completed.
	OnPass func(PassReport)
}

// PassReport says what one reconcile pass looked at.
type PassReport struct {
	// Visited is how many apps the pass reconciled; Full whether it
	// visited every app (the nodes changed, or the first pass).
	Visited int
	Full    bool
}

// NewReconciler builds a Reconciler.
func NewReconciler(store Store, commit Committer, applier PlanApplier, clock Clock, log *slog.Logger) *Reconciler {
	if clock == nil {
		clock = RealClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{store: store, commit: commit, applier: applier, clock: clock, log: log, HistoryPerSlot: 3, NewID: NewTaskID}
}

var watchedTables = []string{state.TableApps, state.TableTasks, state.TableNodes, state.TableVolumePins, state.TableDeployments}

// Run reconciles after every store change and at every due restart, until
// ctx is done. A failed pass is logged and retried after a short pause.
func (r *Reconciler) Run(ctx context.Context) error {
	var after uint64
	for {
		seen := r.store.View().Index(watchedTables...)
		wake, err := r.Step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.log.Warn("reconcile failed; retrying", "err", err)
			wake = r.clock.Now().Add(500 * time.Millisecond)
		}
		after = seen
		if err := r.wait(ctx, after, wake); err != nil {
			return nil
		}
	}
}

// wait returns on the next store change past after, at wake (if set), or
// with an error when ctx is done.
func (r *Reconciler) wait(ctx context.Context, after uint64, wake time.Time) error {
	wctx := ctx
	if !wake.IsZero() {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, max(time.Until(wake), time.Millisecond))
		defer cancel()
	}
	_, err := r.store.WaitForChange(wctx, watchedTables, after)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil // woken some other way; reconcile anyway
	}
	return nil
}

// Step runs one reconcile pass over the apps that need one (marks.go):
// desired-state changes first, then placement of pending tasks. It returns
// when the next time-based action of any app is due (zero: none).
func (r *Reconciler) Step(ctx context.Context) (time.Time, error) {
	now := r.clock.Now()
	if r.marks.fullNext(r.store.View()) {
		if err := r.loseStranded(ctx, now); err != nil {
			return time.Time{}, err
		}
	}
	view := r.store.View()
	p := newPass(view, now, r.NewID)
	next, full := r.marks.next(view)
	apps, keys := r.marks.toVisit(next, view, full, now)
	visited := make(map[string]bool, len(apps))
	for _, app := range apps {
		visited[app.Name] = true
		purge, wake := p.visit(app, r.HistoryPerSlot)
		next.visited(app.Name, keys[app.Name], wake)
		if purge {
			if _, err := r.commit.Commit(ctx, &state.PurgeApp{Name: app.Name}); err != nil {
				return time.Time{}, fmt.Errorf("purge app %s: %w", app.Name, err)
			}
		}
	}
	if !emptyUpdates(p.upd) {
		for _, part := range p.upd.Split() { // bounded entries
			if _, err := r.commit.Commit(ctx, part); err != nil {
				return time.Time{}, fmt.Errorf("commit task updates: %w", err)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.verdicts)) {
		if _, err := r.commit.Commit(ctx, p.verdicts[name]); err != nil {
			return time.Time{}, fmt.Errorf("record the verdicts on app %s: %w", name, err)
		}
	}
	for _, cmd := range p.deploys {
		if _, err := r.commit.Commit(ctx, cmd); err != nil {
			return time.Time{}, fmt.Errorf("record a deployment's progress: %w", err)
		}
	}
	for _, cmd := range p.runs {
		if _, err := r.commit.Commit(ctx, cmd); err != nil {
			return time.Time{}, fmt.Errorf("remove a stopped one-off: %w", err)
		}
	}
	var scan map[string]bool // nil: every app
	if !full {
		scan = maps.Clone(visited)
		maps.Copy(scan, r.marks.pending)
	}
	pending, err := r.place(ctx, scan)
	if err != nil {
		return time.Time{}, err
	}
	next.pending = pending
	r.marks = *next
	if r.OnPass != nil {
		r.OnPass(PassReport{Visited: len(visited), Full: full})
	}
	return r.marks.earliest(), nil
}

// loseStranded marks lost the unfinished tasks of nodes that are down: an
// older manager marked a node down and its tasks lost in two entries, and
// a leader lost between them left tasks "running" on a down node. The
// command that marks a node down does both (state.SetNodeStatus), so
// committing it again repairs them; the pass then replaces them.
func (r *Reconciler) loseStranded(ctx context.Context, now time.Time) error {
	view := r.store.View()
	for _, n := range view.Nodes() {
		if n.Status != types.NodeDown || !slices.ContainsFunc(view.Tasks(state.TaskFilter{NodeID: n.ID}), unfinished) {
			continue
		}
		r.log.Warn("node is down but has tasks not marked lost; marking them lost", "node", n.Name, "id", n.ID)
		if _, err := r.commit.Commit(ctx, &state.SetNodeStatus{ID: n.ID, Status: types.NodeDown, Now: now}); err != nil {
			return fmt.Errorf("mark the tasks of down node %s lost: %w", n.Name, err)
		}
	}
	return nil
}

func unfinished(t *types.Task) bool { return !t.State.Terminal() }

// NewTaskID returns a random 16-hex-digit task ID.
func NewTaskID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// pass is the working state of one Step: the view it reads, the updates it
// collects and the earliest time something is due in the app it visits.
type pass struct {
	view  *state.View
	now   time.Time
	newID func() string
	upd   *state.TaskUpdates
	wake  time.Time
	// verdicts holds, per app, the service statuses that changed.
	verdicts map[string]*state.SetServiceStatus
	// deploys holds the deployments' changes (rollout.go), committed after
	// the task updates.
	deploys []state.Command
	// runs removes the one-offs berth run --rm stopped (runs.go), last.
	runs []state.Command
	// drainingNodes: whether each node looked at is being drained.
	drainingNodes map[string]bool
}

func newPass(view *state.View, now time.Time, newID func() string) *pass {
	return &pass{view: view, now: now, newID: newID, verdicts: map[string]*state.SetServiceStatus{}, drainingNodes: map[string]bool{}, upd: &state.TaskUpdates{
		Pending: map[string]string{},
		Desired: map[string]types.TaskState{},
		Grace:   map[string]time.Duration{},
		Now:     now,
	}}
}

// visit reconciles one app: an app being removed has its tasks shut down
// (purge: every node has torn it down), a live one its services. Either
// way its finished tasks past the history are deleted. wake is when the
// app asks to be looked at again, zero for never by itself.
func (p *pass) visit(app *types.App, keep int) (purge bool, wake time.Time) {
	p.wake = time.Time{}
	tasks := p.view.Tasks(taskFilter(app.Name, ""))
	if app.Deleting {
		purge = p.teardown(app, tasks)
	} else {
		p.app(app, tasks)
	}
	p.gc(tasks, keep)
	return purge, p.wake
}

func (p *pass) wakeAt(t time.Time) {
	if t.IsZero() {
		return
	}
	if p.wake.IsZero() || t.Before(p.wake) {
		p.wake = t
	}
}

// judged records a service's verdict when it differs from the stored one,
// and when to look again if a replica is about to count as up.
func (p *pass) judged(app *types.App, svc *types.Service, slots []slotVerdict) {
	st, wake := judgeService(svc, slots, svc.Status, p.now)
	if !wake.IsZero() {
		p.wakeAt(wake)
	}
	if svc.Status.Same(st) {
		return
	}
	cmd := p.verdicts[app.Name]
	if cmd == nil {
		cmd = &state.SetServiceStatus{App: app.Name, AppVersion: app.Version, Statuses: map[string]*types.ServiceStatus{}}
		p.verdicts[app.Name] = cmd
	}
	cmd.Statuses[svc.Name] = st
}

func (p *pass) shutdown(t *types.Task) {
	if t.DesiredState != types.DesiredShutdown {
		p.upd.Desired[t.ID] = types.DesiredShutdown
		if g := p.stopGrace(t); g > 0 {
			p.upd.Grace[t.ID] = g
		}
	}
}

// stopGrace is the stop grace a -t gave t (0: its service's): down -t's
// for a task of an app being removed, up -t's for one of a version the
// live deployment of its service replaces.
func (p *pass) stopGrace(t *types.Task) time.Duration {
	app := p.view.App(t.App)
	if app == nil {
		return 0
	}
	if app.Deleting {
		return app.StopGrace
	}
	svc := app.Service(t.Service)
	if svc == nil || t.ServiceVersion >= svc.Version {
		return 0
	}
	if d := p.view.Deployment(types.DeploymentID(t.App, t.Service, svc.Version)); d != nil {
		return d.StopGrace
	}
	return 0
}

func (p *pass) create(app string, svc *types.Service, slot int, nodeID string, attempt int) {
	p.upd.Create = append(p.upd.Create, &types.Task{
		ID:             p.newID(),
		App:            app,
		Service:        svc.Name,
		Slot:           slot,
		ServiceVersion: svc.Version,
		NodeID:         nodeID,
		DesiredState:   types.DesiredRunning,
		State:          types.TaskPending,
		Attempt:        attempt,
		CreatedAt:      p.now,
	})
}

func emptyUpdates(u *state.TaskUpdates) bool {
	return len(u.Create) == 0 && len(u.Assign) == 0 && len(u.Pending) == 0 && len(u.Desired) == 0 && len(u.Delete) == 0
}
