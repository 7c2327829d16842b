package state

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

func (c TaskUpdates) apply(w *writeTxn) (any, error) {
	pool := &poolEdit{w: w} // one copy of the pool for the whole entry
	steps := []func(*writeTxn) error{
		func(w *writeTxn) error { return c.create(w, pool) },
		func(w *writeTxn) error { return c.assign(w, pool) },
		c.setPending, c.setDesired, c.delete,
	}
	for _, step := range steps {
		if err := step(w); err != nil {
			return nil, err
		}
	}
	return nil, pool.commit()
}

// create inserts new tasks. A task whose ID exists already is skipped (a
// plan applied twice is harmless), and so is a task of an app that is gone
// or being removed: the plan was made before `down` and is stale. A task
// made for a node (a global service's) whose networks have no slice left
// for it stays pending with the reason.
func (c TaskUpdates) create(w *writeTxn, pool *poolEdit) error {
	for _, in := range c.Create {
		if in == nil || in.ID == "" || getTask(w.txn, in.ID) != nil {
			continue
		}
		if app := getApp(w.txn, in.App); app == nil || app.Deleting {
			continue
		}
		t := cloneTask(in)
		t.State = cmp.Or(t.State, types.TaskPending)
		t.DesiredState = cmp.Or(t.DesiredState, types.DesiredRunning)
		if t.CreatedAt.IsZero() {
			t.CreatedAt = c.Now
		}
		t.CreateIndex, t.ModifyIndex = w.index, w.index
		if err := allocateSlices(w, pool, t); err != nil {
			t.PendingReason = err.Error()
		}
		if err := w.insert(TableTasks, t); err != nil {
			return err
		}
	}
	return nil
}

// assign places pending tasks; a task that is no longer pending was placed
// or stopped since the plan was made, and is skipped. A task whose
// networks have no slice left for the node stays pending with the reason
// (the pool is exhausted, and what to change): the other tasks of the
// plan are placed all the same.
func (c TaskUpdates) assign(w *writeTxn, pool *poolEdit) error {
	for _, a := range c.Assign {
		t := getTask(w.txn, a.TaskID)
		if t == nil || t.State != types.TaskPending || a.NodeID == "" {
			continue
		}
		placed := *t
		placed.NodeID = a.NodeID
		if err := allocateSlices(w, pool, &placed); err != nil { // netpool.go
			reason := err.Error()
			if err := updateTask(w, t.ID, func(t *types.Task) bool {
				changed := t.PendingReason != reason
				t.PendingReason = reason
				return changed
			}); err != nil {
				return err
			}
			continue
		}
		err := updateTask(w, a.TaskID, func(t *types.Task) bool {
			t.NodeID, t.State, t.PendingReason = a.NodeID, types.TaskAssigned, ""
			return true
		})
		if err != nil {
			return err
		}
		if err := pinOnAssign(w, a, c.Now); err != nil { // apply_volume.go
			return err
		}
	}
	return nil
}

func (c TaskUpdates) setPending(w *writeTxn) error {
	for _, id := range slices.Sorted(maps.Keys(c.Pending)) {
		reason := c.Pending[id]
		err := updateTask(w, id, func(t *types.Task) bool {
			if t.State != types.TaskPending || t.PendingReason == reason {
				return false
			}
			t.PendingReason = reason
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// setDesired sets desired states. A task told to shut down before it was
// placed has no agent to report it, so it moves to shutdown here.
func (c TaskUpdates) setDesired(w *writeTxn) error {
	for _, id := range slices.Sorted(maps.Keys(c.Desired)) {
		desired := c.Desired[id]
		err := updateTask(w, id, func(t *types.Task) bool {
			changed := t.DesiredState != desired
			t.DesiredState = desired
			if g, ok := c.Grace[id]; ok && desired == types.DesiredShutdown {
				t.StopGrace = g
			}
			if desired == types.DesiredShutdown && t.State == types.TaskPending {
				t.State, t.PendingReason, t.FinishedAt = types.TaskShutdown, "", c.Now
				changed = true
			}
			return changed
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (c TaskUpdates) delete(w *writeTxn) error {
	for _, id := range c.Delete {
		if t := getTask(w.txn, id); t != nil {
			if err := w.delete(TableTasks, t); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c TaskStatusUpdate) apply(w *writeTxn) (any, error) {
	w.reportsOnly = true
	return nil, c.applyTo(w)
}

func (c TaskStatusUpdate) applyTo(w *writeTxn) error {
	for _, st := range c.Statuses {
		err := updateTask(w, st.TaskID, func(t *types.Task) bool {
			return c.NodeID != "" && t.NodeID == c.NodeID && applyStatus(t, st, c.Now)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// apply applies each node's report in turn, as one transaction.
func (c TaskStatusBatch) apply(w *writeTxn) (any, error) {
	w.reportsOnly = true
	for _, u := range c.Reports {
		if err := u.applyTo(w); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// applyStatus copies an agent's report into t and reports whether t changed.
// Observed state only moves forward: a report of an earlier state is stale
// and ignored, and a terminal state is final. When the agent gives no start
// or finish time, the batch's time stands in for it.
func applyStatus(t *types.Task, st types.TaskStatus, now time.Time) bool {
	if !knownState(st.State) || t.State.Terminal() || st.State.Rank() < t.State.Rank() {
		return false
	}
	before := reportedOf(t)
	t.State = st.State
	t.Paused = st.Paused && st.State == types.TaskRunning
	if st.Health != types.HealthNone {
		t.Health, t.HealthOutput = st.Health, st.HealthOutput
	}
	if t.Health == types.HealthHealthy && t.HealthyAt.IsZero() {
		t.HealthyAt = now
	}
	if st.ExitCode != nil {
		code := *st.ExitCode
		t.ExitCode = &code
	}
	t.Error = cmp.Or(st.Error, t.Error)
	// Progress is news of now only: a report without it (the task runs,
	// or failed) clears it.
	t.Progress = st.Progress
	t.ContainerID = cmp.Or(st.ContainerID, t.ContainerID)
	if st.Addresses != nil && !maps.Equal(st.Addresses, t.Addresses) {
		t.Addresses = maps.Clone(st.Addresses)
	}
	if !st.StartedAt.IsZero() {
		t.StartedAt = st.StartedAt
	}
	if !st.FinishedAt.IsZero() {
		t.FinishedAt = st.FinishedAt
	}
	if t.State == types.TaskRunning && t.StartedAt.IsZero() {
		t.StartedAt = now
	}
	if t.State.Terminal() && t.FinishedAt.IsZero() {
		t.FinishedAt = now
	}
	return !before.same(reportedOf(t))
}

// reported is the part of a task an agent's report writes (applyStatus),
// compared field by field: comparing whole tasks as JSON, after a second
// copy, was most of the cost of applying a report.
type reported struct {
	state                    types.TaskState
	paused                   bool
	health                   types.Health
	healthOutput, err        string
	progress, containerID    string
	exitCode                 *int
	addresses                map[string]string
	healthyAt, started, done time.Time
}

func reportedOf(t *types.Task) reported {
	return reported{state: t.State, paused: t.Paused, health: t.Health, healthOutput: t.HealthOutput, err: t.Error,
		progress: t.Progress, containerID: t.ContainerID, exitCode: t.ExitCode, addresses: t.Addresses,
		healthyAt: t.HealthyAt, started: t.StartedAt, done: t.FinishedAt}
}

func (a reported) same(b reported) bool {
	return a.state == b.state && a.paused == b.paused && a.health == b.health && a.healthOutput == b.healthOutput &&
		a.err == b.err && a.progress == b.progress && a.containerID == b.containerID &&
		(a.exitCode == nil) == (b.exitCode == nil) && (a.exitCode == nil || *a.exitCode == *b.exitCode) &&
		maps.Equal(a.addresses, b.addresses) &&
		a.healthyAt.Equal(b.healthyAt) && a.started.Equal(b.started) && a.done.Equal(b.done)
}

func knownState(s types.TaskState) bool {
	switch s {
	case types.TaskPending, types.TaskAssigned, types.TaskStarting, types.TaskRunning,
		types.TaskComplete, types.TaskFailed, types.TaskShutdown, types.TaskRejected, types.TaskLost:
		return true
	}
	return false
}

// updateTask applies change to a copy of the task with the given ID and
// stores the copy if change reports a change. A missing task is skipped.
func updateTask(w *writeTxn, id string, change func(*types.Task) bool) error {
	old := getTask(w.txn, id)
	if old == nil {
		return nil
	}
	t := cloneTask(old)
	if !change(t) {
		return nil
	}
	t.ModifyIndex = w.index
	return w.insert(TableTasks, t)
}
