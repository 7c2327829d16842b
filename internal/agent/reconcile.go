package agent

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// vanishedError is reported for a started task its driver no longer holds.
const vanishedError = "the task is gone from its driver (removed outside berth, or lost when the node restarted)"

// reconcile moves every task one step towards what the manager wants. It
// waits for the first NodeTasks and the first driver listing, so that a
// restarted agent adopts its tasks instead of removing or duplicating them.
func (l *loop) reconcile(ctx context.Context) {
	if l.desired == nil || !l.listed {
		return
	}
	now := time.Now()
	want := make(map[string]bool, len(l.desired.Tasks))
	for _, t := range l.desired.Tasks {
		want[t.ID] = true
		r := l.record(t.ID)
		if r.local.App == "" {
			r.local.App, r.local.Service = t.App, t.Service
		}
		if r.busy == opNone && !now.Before(r.retryAt) {
			l.reconcileTask(ctx, t, r)
		}
	}
	for id, r := range l.tasks {
		if !want[id] && r.busy == opNone && !now.Before(r.retryAt) {
			l.reconcileGone(ctx, r)
		}
	}
	l.reconcileTeardowns(ctx, now)
	l.reconcileVolumeRemovals(ctx, now)
}

func (l *loop) reconcileTask(ctx context.Context, t *types.Task, r *taskRecord) {
	if t.DesiredState == types.DesiredShutdown {
		l.shutDown(ctx, t, r)
	} else {
		l.keepRunning(ctx, t, r)
	}
	// A deleted app's finished tasks are removed even while the manager
	// still lists them (once it has, or is sent, their final state): its
	// teardown waits for them.
	if l.appDeleting(t.App) && (r.final || t.State.Terminal()) && r.busy == opNone && r.status != nil &&
		(r.status.State == driver.StateExited || r.stopped) {
		l.remove(ctx, r)
	}
}

// keepRunning handles a task the manager wants running.
func (l *loop) keepRunning(ctx context.Context, t *types.Task, r *taskRecord) {
	switch {
	case r.status != nil:
		l.report(t, r, observed(r.status, t.DesiredState))
	case r.startErr != "":
		l.report(t, r, types.TaskStatus{State: types.TaskRejected, Error: r.startErr})
	case r.removed || t.State.Terminal():
	case r.local.Started || r.vanished || rank(t.State) >= types.TaskRunning.Rank():
		// Started once already: never start it a second time.
		l.report(t, r, types.TaskStatus{State: types.TaskFailed, Error: vanishedError})
	case !l.appDeleting(t.App):
		l.start(ctx, t, r)
	}
}

// shutDown handles a task the manager wants stopped.
func (l *loop) shutDown(ctx context.Context, t *types.Task, r *taskRecord) {
	switch {
	case r.status != nil && r.status.State != driver.StateExited && !r.stopped:
		if !l.draining(t) { // drain.go: out of every node's DNS and mesh first
			l.stop(ctx, r)
		}
	case r.status != nil && r.status.State == driver.StateExited:
		l.report(t, r, observed(r.status, t.DesiredState))
	case r.stopped:
		// Stopped, but the driver has not shown the exit yet.
		l.report(t, r, types.TaskStatus{State: types.TaskShutdown, FinishedAt: time.Now()})
	case !t.State.Terminal():
		// Never started here (an old version's spec is not even sent).
		l.report(t, r, types.TaskStatus{State: types.TaskShutdown})
	}
}

// reconcileGone handles a task the manager no longer lists: whatever is
// left of it in a driver is stopped and removed, then it is forgotten.
func (l *loop) reconcileGone(ctx context.Context, r *taskRecord) {
	switch {
	case r.status == nil:
		l.forget(r)
	case r.status.State != driver.StateExited && !r.stopped:
		if !l.drainingGone(r) { // drain.go: `down` drains too
			l.stop(ctx, r)
		}
	default:
		l.remove(ctx, r)
	}
}

func (l *loop) forget(r *taskRecord) {
	if r.local.Started {
		if err := l.store.DeleteTask(r.id); err != nil {
			l.a.log.Warn("forget local task state", "task", r.id, "err", err)
			return
		}
	}
	delete(l.tasks, r.id)
}

func (l *loop) appDeleting(app string) bool {
	res := l.desired.Apps[app]
	return res != nil && res.Deleting
}

// reconcileTeardowns removes a deleted app's networks and volumes once no
// task of the app is left in any driver, and tells the manager, once.
func (l *loop) reconcileTeardowns(ctx context.Context, now time.Time) {
	for app, td := range l.teardowns {
		if !l.appDeleting(app) && !td.busy {
			delete(l.teardowns, app)
		}
	}
	for app, res := range l.desired.Apps {
		if !res.Deleting || !l.appSettled(app) {
			continue
		}
		td := l.teardowns[app]
		if td == nil {
			td = &teardown{}
			l.teardowns[app] = td
		}
		if td.busy || td.done || now.Before(td.retryAt) {
			continue
		}
		l.startTeardown(ctx, app, res.RemoveVolumes, td)
	}
}

// appSettled reports whether no driver holds (or is being asked about) a
// task of app, and the manager holds a final state for each of its tasks:
// the teardown report comes after the tasks' own.
func (l *loop) appSettled(app string) bool {
	for _, r := range l.tasks {
		if r.local.App == app && (r.status != nil || r.busy != opNone) {
			return false
		}
	}
	for _, t := range l.desired.Tasks {
		if t.App == app && !t.State.Terminal() {
			return false
		}
	}
	return true
}
