package state

import (
	"fmt"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// The per-service verbs of Compose (berth stop, start, restart, rm) as
// desired state: each sets a service's types.Lifecycle, which the
// controller acts on (controller/lifecycle.go). Kept in the app's record,
// they survive a leader change and a snapshot restore as the spec does.

// StopServices stops services of an app (`berth stop`): the controller
// shuts down their tasks and places none until StartServices,
// RestartServices or an UpsertApp. Services empty: every service. Grace,
// when set, is the stop grace of the tasks it stops. Result: the updated
// *types.App.
type StopServices struct {
	App      string        `json:"app"`
	Services []string      `json:"services,omitempty"`
	Grace    time.Duration `json:"grace,omitempty"`
	Now      time.Time     `json:"now"`
}

// StartServices starts services StopServices stopped (`berth start`); one
// not stopped is left as it is. Result: the updated *types.App.
type StartServices struct {
	App      string    `json:"app"`
	Services []string  `json:"services,omitempty"`
	Now      time.Time `json:"now"`
}

// RestartServices replaces the tasks the services have now (`berth
// restart`), and starts stopped ones. Result: the updated *types.App.
type RestartServices struct {
	App      string        `json:"app"`
	Services []string      `json:"services,omitempty"`
	Grace    time.Duration `json:"grace,omitempty"`
	Now      time.Time     `json:"now"`
}

// RemoveStoppedTasks deletes the records of the services' tasks that were
// told to stop and have stopped (`berth rm`); their agents then remove the
// containers, as for any task no longer listed. A finished task still
// wanted (a one-shot that completed) is kept: removing it would leave its
// slot empty, and the controller would run it again. One-offs (berth
// run) whose tasks have all stopped go too, with their tasks, as Compose's
// rm removes a stopped run container (RemoveRuns); Now stamps that change.
// Result: the removed []*types.Task.
type RemoveStoppedTasks struct {
	App      string    `json:"app"`
	Services []string  `json:"services,omitempty"`
	Now      time.Time `json:"now,omitzero"`
}

func (StopServices) kind() commandKind       { return kindStopServices }
func (StartServices) kind() commandKind      { return kindStartServices }
func (RestartServices) kind() commandKind    { return kindRestartServices }
func (RemoveStoppedTasks) kind() commandKind { return kindRemoveStoppedTasks }

func (c StopServices) apply(w *writeTxn) (any, error) {
	return setLifecycle(w, c.App, c.Services, c.Now, func(svc *types.Service) *types.Lifecycle {
		if svc.IsStopped() {
			return svc.Lifecycle // stopped already: its tasks are the ones it stopped
		}
		return &types.Lifecycle{Stopped: true, Index: w.index, Grace: c.Grace, At: c.Now}
	})
}

func (c StartServices) apply(w *writeTxn) (any, error) {
	return setLifecycle(w, c.App, c.Services, c.Now, func(svc *types.Service) *types.Lifecycle {
		if !svc.IsStopped() || removing(svc) {
			return svc.Lifecycle
		}
		return nil
	})
}

func (c RestartServices) apply(w *writeTxn) (any, error) {
	return setLifecycle(w, c.App, c.Services, c.Now, func(svc *types.Service) *types.Lifecycle {
		if removing(svc) {
			return svc.Lifecycle
		}
		return &types.Lifecycle{Restart: true, Index: w.index, Grace: c.Grace, At: c.Now}
	})
}

// removing reports whether svc is a one-off that berth run --rm is
// removing: neither start nor restart brings it back.
func removing(svc *types.Service) bool { return svc.Lifecycle != nil && svc.Lifecycle.Remove }

func (c RemoveStoppedTasks) apply(w *writeTxn) (any, error) {
	app, err := liveApp(w, c.App, "have its tasks removed")
	if err != nil {
		return nil, err
	}
	if err := checkServices(app, c.Services); err != nil {
		return nil, err
	}
	var removed []*types.Task
	var ids []string
	for _, t := range listTasks(w.txn, TaskFilter{App: c.App}) {
		if t.DesiredState == types.DesiredShutdown && t.State.Terminal() && named(c.Services, t.Service) {
			removed = append(removed, t)
			ids = append(ids, t.ID)
		}
	}
	if err := (TaskUpdates{Delete: ids}).delete(w); err != nil {
		return nil, err
	}
	runs := finishedOneOffs(w, app, c.Services) // apply_run.go
	if len(runs) == 0 {
		return removed, nil
	}
	res, err := RemoveRuns{App: c.App, Services: runs, Now: c.Now}.apply(w)
	if err != nil {
		return nil, err
	}
	return append(removed, res.(*RemoveRunsResult).Tasks...), nil
}

// setLifecycle gives each named service (every one, with none named) the
// lifecycle next returns for it, and stores the app if one changed.
func setLifecycle(w *writeTxn, appName string, services []string, now time.Time, next func(*types.Service) *types.Lifecycle) (any, error) {
	old, err := liveApp(w, appName, "be stopped or started")
	if err != nil {
		return nil, err
	}
	if err := checkServices(old, services); err != nil {
		return nil, err
	}
	app := cloneApp(old)
	changed := false
	for _, svc := range app.Services {
		if !named(services, svc.Name) {
			continue
		}
		l := next(svc)
		if jsonEqual(l, svc.Lifecycle) {
			continue
		}
		// The verdict was judged on the tasks before: the controller
		// judges afresh once the service runs again.
		svc.Lifecycle, svc.Status, changed = l, nil, true
	}
	if !changed {
		return old, nil
	}
	// A new app version, as a scale makes: a verdict judged before this
	// is stale and dropped (SetServiceStatus).
	app.Version++
	app.UpdatedAt, app.ModifyIndex = now, w.index
	return app, w.insert(TableApps, app)
}

func liveApp(w *writeTxn, name, what string) (*types.App, error) {
	app := getApp(w.txn, name)
	if app == nil {
		return nil, fmt.Errorf("app %s: %w", name, ErrNotFound)
	}
	if app.Deleting {
		return nil, fmt.Errorf("app %s is being removed; it cannot %s", name, what)
	}
	return app, nil
}

// checkServices refuses a service name the app does not have.
func checkServices(app *types.App, services []string) error {
	for _, name := range services {
		if app.Service(name) == nil {
			return fmt.Errorf("service %s of app %s: %w", name, app.Name, ErrNotFound)
		}
	}
	return nil
}

// named reports whether service is among names; no names means all.
func named(names []string, service string) bool {
	return len(names) == 0 || slices.Contains(names, service)
}
