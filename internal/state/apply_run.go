package state

import (
	"fmt"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// RemoveRuns removes one-offs of an app (types.OneOff, berth run --rm):
// a one-off none of whose tasks may have a process (each ended, or never
// left pending: types.Task.MayHaveProcess) leaves the app at once with its
// task records (their agents then remove the containers, as for any task
// no longer listed); one still running is stopped (its Lifecycle Stopped
// and Remove) and the controller commits RemoveRuns again once its tasks
// have stopped. A name that is no one-off of the app, or no longer there,
// is skipped: removal is idempotent. Result: *RemoveRunsResult.
type RemoveRuns struct {
	App      string    `json:"app"`
	Services []string  `json:"services"`
	Now      time.Time `json:"now"`
}

// RemoveRunsResult tells what a RemoveRuns did: the one-offs Removed with
// their tasks (by name), and those Stopping first.
type RemoveRunsResult struct {
	Removed, Stopping []string
	Tasks             []*types.Task
}

func (RemoveRuns) kind() commandKind { return kindRemoveRuns }

func (c RemoveRuns) apply(w *writeTxn) (any, error) {
	res := &RemoveRunsResult{}
	old := getApp(w.txn, c.App)
	if old == nil {
		return nil, fmt.Errorf("app %s: %w", c.App, ErrNotFound)
	}
	if old.Deleting {
		return res, nil // down removes every task and the app anyway
	}
	app := cloneApp(old)
	var doomed []*types.Task
	for _, name := range c.Services {
		svc := app.Service(name)
		if svc == nil || !svc.IsOneOff() {
			continue
		}
		tasks := listTasks(w.txn, TaskFilter{App: c.App, Service: name})
		if slices.ContainsFunc(tasks, (*types.Task).MayHaveProcess) {
			if svc.Lifecycle == nil || !svc.Lifecycle.Remove {
				svc.Lifecycle = &types.Lifecycle{Stopped: true, Remove: true, Index: w.index, At: c.Now}
				svc.Status = nil
			}
			res.Stopping = append(res.Stopping, name)
			continue
		}
		app.Services = slices.DeleteFunc(app.Services, func(s *types.Service) bool { return s.Name == name })
		doomed = append(doomed, tasks...)
		res.Removed = append(res.Removed, name)
	}
	if jsonEqual(old, app) {
		return res, nil
	}
	for _, t := range doomed {
		if err := w.delete(TableTasks, t); err != nil {
			return nil, err
		}
	}
	res.Tasks = doomed
	for _, name := range res.Removed {
		if _, err := deletePins(w, c.App, name, 0); err != nil {
			return nil, err
		}
		if err := deleteDeployments(w, c.App, name); err != nil {
			return nil, err
		}
	}
	if err := allocateApp(w, app, old); err != nil { // frees the one-offs' virtual addresses
		return nil, fmt.Errorf("app %s: %w", c.App, err)
	}
	// A new app version, as a stop makes: a verdict judged before is stale.
	app.Version++
	app.UpdatedAt, app.ModifyIndex = c.Now, w.index
	return res, w.insert(TableApps, app)
}

// finishedOneOffs are the app's one-offs of services (every one, with none
// named; a one-off is named by its own name or its service's) none of
// whose tasks may have a process: berth rm removes them with their tasks.
func finishedOneOffs(w *writeTxn, app *types.App, services []string) []string {
	var out []string
	for _, svc := range app.Services {
		if !svc.IsOneOff() || !(named(services, svc.Name) || named(services, svc.OneOff.Of)) {
			continue
		}
		tasks := listTasks(w.txn, TaskFilter{App: app.Name, Service: svc.Name})
		if !slices.ContainsFunc(tasks, (*types.Task).MayHaveProcess) {
			out = append(out, svc.Name)
		}
	}
	return out
}
