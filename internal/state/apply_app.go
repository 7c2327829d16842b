package state

import (
	"errors"
	"fmt"
	"slices"

	"github.com/berth-dev/berth/internal/types"
)

func (c UpsertApp) apply(w *writeTxn) (any, error) {
	if c.App == nil || c.App.Name == "" {
		return nil, errors.New("upsert app: the app has no name")
	}
	if err := validateServices(c.App); err != nil {
		return nil, err
	}
	app := cloneApp(c.App)
	// Teardown state belongs to `down`, never to a submission; verdicts
	// to the controller, which judges the new submission afresh; and a
	// submission starts what berth stop stopped, as Compose's up does.
	app.Deleting, app.RemoveVolumes, app.TornDownOn, app.StopGrace = false, false, nil, 0
	for _, svc := range app.Services {
		svc.Status, svc.Lifecycle = nil, nil
	}
	old := getApp(w.txn, app.Name)
	if old != nil && old.Deleting {
		return nil, fmt.Errorf("app %s is being removed; wait for `berth down` to finish", app.Name)
	}
	if c.Base != 0 && (old == nil || old.Version != c.Base) {
		return nil, fmt.Errorf("app %s: %w", app.Name, ErrStale)
	}
	keepLifecycles(app, old, c.Untouched)
	res := &UpsertResult{App: app}
	versionServices(app, old, res, c.Recreate)
	if err := allocateApp(w, app, old); err != nil {
		return nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	if err := recordDeployments(w, app, old, res, c); err != nil { // apply_deployment.go
		return nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	if old == nil {
		app.Version, app.CreatedAt, app.UpdatedAt = 1, c.Now, c.Now
		app.CreateIndex, app.ModifyIndex = w.index, w.index
		return res, w.insert(TableApps, app)
	}
	if !appChanged(old, app) {
		res.App = old // nothing to write: watchers are not woken
		return res, nil
	}
	app.Version, app.CreatedAt, app.UpdatedAt = old.Version+1, old.CreatedAt, c.Now
	app.CreateIndex, app.ModifyIndex = old.CreateIndex, w.index
	return res, w.insert(TableApps, app)
}

// keepLifecycles gives the services up left untouched (up SERVICE... named
// others; orphans kept) the lifecycle they have in the stored app old, as
// it is now: a berth stop of theirs stays, as Compose's up leaves them.
func keepLifecycles(app, old *types.App, untouched []string) {
	if old == nil {
		return
	}
	for _, name := range untouched {
		if svc, prev := app.Service(name), old.Service(name); svc != nil && prev != nil {
			svc.Lifecycle = prev.Lifecycle
		}
	}
}

// validateServices rejects what would break versioning: a missing or
// unnamed service, or two services of one name. The API validates apps in
// full before they get here; this guards the FSM, which must never panic.
func validateServices(app *types.App) error {
	seen := map[string]bool{}
	for i, svc := range app.Services {
		switch {
		case svc == nil || svc.Name == "":
			return fmt.Errorf("upsert app %s: service %d has no name", app.Name, i+1)
		case seen[svc.Name]:
			return fmt.Errorf("upsert app %s: service %s is defined twice", app.Name, svc.Name)
		}
		seen[svc.Name] = true
	}
	return nil
}

// versionServices sets each service's SpecHash and Version from the stored
// app old (nil if new) and fills in the lists of res. A service whose hash
// is unchanged keeps its version, so its tasks are left alone, unless it is
// one to recreate.
func versionServices(app, old *types.App, res *UpsertResult, recreate []string) {
	for _, svc := range app.Services {
		svc.SpecHash = svc.ComputeSpecHash(app)
		var prev *types.Service
		if old != nil {
			prev = old.Service(svc.Name)
		}
		switch {
		case prev == nil:
			svc.Version = 1
			res.Changed = append(res.Changed, svc.Name)
		case prev.SpecHash == svc.SpecHash && !slices.Contains(recreate, svc.Name):
			svc.Version = prev.Version
			res.Unchanged = append(res.Unchanged, svc.Name)
		default:
			svc.Version = prev.Version + 1
			res.Changed = append(res.Changed, svc.Name)
		}
	}
	if old == nil {
		return
	}
	for _, svc := range old.Services {
		if app.Service(svc.Name) == nil {
			res.Removed = append(res.Removed, svc.Name)
		}
	}
}

// appChanged reports whether the submitted app differs from the stored one
// in anything a user wrote (replicas included), ignoring the bookkeeping
// fields the store sets.
func appChanged(old, app *types.App) bool {
	a, b := cloneApp(old), cloneApp(app)
	for _, x := range []*types.App{a, b} {
		x.Version, x.CreateIndex, x.ModifyIndex = 0, 0, 0
		x.CreatedAt, x.UpdatedAt = zeroTime, zeroTime
		x.Deleting, x.RemoveVolumes, x.TornDownOn = false, false, nil
		for _, svc := range x.Services {
			svc.Status = nil
		}
	}
	return !jsonEqual(a, b)
}

func (c DeleteApp) apply(w *writeTxn) (any, error) {
	old := getApp(w.txn, c.Name)
	if old == nil {
		return nil, fmt.Errorf("app %s: %w", c.Name, ErrNotFound)
	}
	app := cloneApp(old)
	app.Deleting = true
	// Once asked to remove volumes, a later plain `down` does not undo it.
	app.RemoveVolumes = old.RemoveVolumes || c.Volumes
	if c.StopGrace > 0 {
		app.StopGrace = c.StopGrace
	}
	app.UpdatedAt, app.ModifyIndex = c.Now, w.index
	return app, w.insert(TableApps, app)
}

func (c PurgeApp) apply(w *writeTxn) (any, error) {
	app := getApp(w.txn, c.Name)
	if app == nil {
		return nil, fmt.Errorf("app %s: %w", c.Name, ErrNotFound)
	}
	for _, t := range listTasks(w.txn, TaskFilter{App: c.Name}) {
		if err := w.delete(TableTasks, t); err != nil {
			return nil, err
		}
	}
	if app.RemoveVolumes { // `down -v`: the volumes are gone, and so are their pins
		if _, err := deletePins(w, c.Name, "", 0); err != nil {
			return nil, err
		}
	}
	if err := releaseApp(w, app); err != nil {
		return nil, err
	}
	if err := deleteDeployments(w, c.Name, ""); err != nil {
		return nil, err
	}
	return nil, w.delete(TableApps, app)
}

func (c TeardownDone) apply(w *writeTxn) (any, error) {
	old := getApp(w.txn, c.App)
	if old == nil {
		return nil, fmt.Errorf("app %s: %w", c.App, ErrNotFound)
	}
	if slices.Contains(old.TornDownOn, c.NodeID) {
		return old, nil
	}
	app := cloneApp(old)
	app.TornDownOn = append(app.TornDownOn, c.NodeID)
	app.ModifyIndex = w.index
	// The node removed every container of the app before saying so: its
	// tasks there have stopped, whatever they last reported.
	for _, t := range listTasks(w.txn, TaskFilter{App: c.App, NodeID: c.NodeID}) {
		err := updateTask(w, t.ID, func(t *types.Task) bool {
			if t.State.Terminal() {
				return false
			}
			t.State, t.FinishedAt = types.TaskShutdown, c.Now
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return app, w.insert(TableApps, app)
}

func (c ScaleService) apply(w *writeTxn) (any, error) {
	if c.Replicas < 0 {
		return nil, fmt.Errorf("scale %s/%s: replicas must be 0 or more, not %d", c.App, c.Service, c.Replicas)
	}
	old := getApp(w.txn, c.App)
	if old == nil {
		return nil, fmt.Errorf("app %s: %w", c.App, ErrNotFound)
	}
	if old.Deleting {
		return nil, fmt.Errorf("app %s is being removed; it cannot be scaled", c.App)
	}
	svc := old.Service(c.Service)
	switch {
	case svc == nil:
		return nil, fmt.Errorf("service %s of app %s: %w", c.Service, c.App, ErrNotFound)
	case svc.Mode == types.ModeGlobal:
		return nil, fmt.Errorf("service %s of app %s is global (one task per node); it cannot be scaled", c.Service, c.App)
	case svc.Replicas == c.Replicas:
		return old, nil
	}
	app := cloneApp(old)
	app.Service(c.Service).Replicas = c.Replicas
	app.Service(c.Service).Status = nil // judged on the old count
	app.Version++
	app.UpdatedAt, app.ModifyIndex = c.Now, w.index
	return app, w.insert(TableApps, app)
}

func (c SetServiceStatus) apply(w *writeTxn) (any, error) {
	old := getApp(w.txn, c.App)
	if old == nil || old.Deleting || old.Version != c.AppVersion {
		return nil, nil // gone, going or changed since it was judged
	}
	app := cloneApp(old)
	changed := false
	for name, st := range c.Statuses {
		svc := app.Service(name)
		if svc == nil || st == nil || st.Version != svc.Version || jsonEqual(svc.Status, st) {
			continue
		}
		svc.Status, changed = st, true
	}
	if !changed {
		return nil, nil
	}
	app.ModifyIndex = w.index
	return nil, w.insert(TableApps, app)
}
