package controller

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// place asks the scheduler to place every pending task whose dependencies
// are met, of the apps scan names (nil: every app; marks.go), on the reconciler's view
// brought up to date with the store (after this pass's own commit,
// view.go), and hands the plan to the applier. Tasks held back by
// depends_on get that as their reason. pending are the apps that had
// pending tasks, placed now or not.
func (r *Reconciler) place(ctx context.Context, scan map[string]bool) (pending map[string]bool, err error) {
	view := r.store.View()
	var reqs []scheduler.Request
	held := map[string]string{}
	pinned := map[string]*types.VolumePin{} // task ID -> its slot's pin
	pending = map[string]bool{}
	apps := view.Apps()
	if scan != nil {
		apps = apps[:0:0]
		for _, name := range slices.Sorted(maps.Keys(scan)) {
			if app := view.App(name); app != nil {
				apps = append(apps, app)
			}
		}
	}
	for _, app := range apps {
		if app.Deleting {
			continue
		}
		for _, svc := range app.Services {
			var some bool
			if reqs, some = appendPending(reqs, held, pinned, view, app, svc); some {
				pending[app.Name] = true
			}
		}
	}
	if len(reqs) == 0 && len(held) == 0 {
		return pending, nil
	}
	r.sched.mu.Lock()
	defer r.sched.mu.Unlock()
	plan := r.sched.sync(view).Place(reqs)
	defer r.sched.forget(plan)
	for i, f := range plan.Failures {
		if pin := pinned[f.TaskID]; pin != nil {
			plan.Failures[i].Reason = pinReason(view, pin, f.Reason)
		}
	}
	for id, reason := range held {
		plan.Failures = append(plan.Failures, scheduler.Failure{TaskID: id, Reason: reason})
	}
	if err := r.applier.ApplyPlan(ctx, plan); err != nil {
		return nil, fmt.Errorf("apply plan: %w", err)
	}
	return pending, nil
}

// appendPending adds to reqs the pending tasks of svc that may be placed,
// and to held those that must wait (with why, when it changed). some
// reports whether svc has pending tasks at all.
func appendPending(reqs []scheduler.Request, held map[string]string, pinned map[string]*types.VolumePin, view *state.View, app *types.App, svc *types.Service) (_ []scheduler.Request, some bool) {
	var block string
	var bySlot map[int][]*types.Task
	var stopFirst bool
	checked := false
	tasks := view.Tasks(taskFilter(app.Name, svc.Name))
	for _, t := range tasks {
		if t.State != types.TaskPending || t.DesiredState != types.DesiredRunning || t.ServiceVersion != svc.Version {
			continue
		}
		if !checked {
			// Once per service, not per pending task: with 100,000
			// replicas a scan of the siblings for each was most of the
			// leader's CPU (issue 20's sim runs).
			block, checked = depsBlock(view, app, svc), true
			bySlot, stopFirst = tasksBySlot(tasks), stopFirstOrder(view, app, svc)
		}
		slot := bySlot[t.Slot]
		req, pin, hold := pinnedRequest(view, app, svc, t, slot) // pins.go
		if why := cmp.Or(block, hold, stopFirstHold(stopFirst, t, slot)); why != "" {
			if t.PendingReason != why {
				held[t.ID] = why
			}
			continue
		}
		if pin != nil {
			pinned[t.ID] = pin
		}
		reqs = append(reqs, req)
	}
	return reqs, checked
}

// stopFirstHold is why a new version's task t must wait, or "": in a
// stop-first rollout it starts once the task of its slot it replaces has
// ended (drained, stopped), as in Swarm, so the two never run at once (a
// host-mode port, the node's last free memory) and a rollout never runs
// more replicas than the service has. slot is the tasks of t's slot.
func stopFirstHold(stopFirst bool, t *types.Task, slot []*types.Task) string {
	if !stopFirst || t.Slot == 0 {
		return "" // global: one task per node, whose old one is replaced in place
	}
	for _, o := range slot {
		if o.Slot == t.Slot && o.ServiceVersion != t.ServiceVersion && o.DesiredState != types.DesiredRunning && o.HoldsResources() {
			return fmt.Sprintf("waiting for task %s (version %d) to stop: the update is stop-first", o.ID, o.ServiceVersion)
		}
	}
	return ""
}

// stopFirstOrder reports whether svc's current version rolls out
// stop-first: its deployment's update config, else the service's own.
func stopFirstOrder(view *state.View, app *types.App, svc *types.Service) bool {
	cfg := svc.UpdateConfig.Effective()
	if d := view.CurrentDeployment(app.Name, svc.Name, svc.Version); d != nil {
		cfg = d.Config.Effective()
	}
	return cfg.Order == types.OrderStopFirst
}

// tasksBySlot groups tasks by slot (global tasks, slot 0, together).
func tasksBySlot(tasks []*types.Task) map[int][]*types.Task {
	m := make(map[int][]*types.Task, len(tasks))
	for _, t := range tasks {
		m[t.Slot] = append(m[t.Slot], t)
	}
	return m
}

// PlacedTasks are the tasks that hold resources on a node, for a scheduling
// snapshot (the reconciler's and the plan applier's).
func PlacedTasks(view *state.View) []*types.Task {
	var out []*types.Task
	for _, t := range view.Tasks(state.TaskFilter{}) {
		if t.HoldsResources() {
			out = append(out, t)
		}
	}
	return out
}

// Services indexes every service of every app by types.ServiceID.
func Services(view *state.View) map[string]*types.Service {
	m := map[string]*types.Service{}
	for _, app := range view.Apps() {
		for _, svc := range app.Services {
			m[types.ServiceID(app.Name, svc.Name)] = svc
		}
	}
	return m
}
