package controller

import "github.com/berth-dev/berth/internal/types"

// A service's types.Lifecycle (berth stop, start, restart) decides before
// its spec does:
//   - stopped: every wanted task is shut down and none is created. The
//     agent drains each (it leaves the network map in the entry that stops
//     it: types.Task.Serving) and stops it with the stop's grace. No
//     verdict is judged: the service is not converging, it was told to
//     rest, and the last verdict stands until it runs again.
//   - restart: a slot's current task created before the restart asked is
//     shut down and replaced at once, as a restart of the slot (a new
//     task, attempt 0: the restart policy's count starts over, as after a
//     Compose restart). The new task is placed as any other; the old one
//     drains and stops as any replica told to stop.
//
// start clears the stop: the slots have no wanted task, and slot creates
// them afresh.

// stopped shuts down the wanted tasks of a stopped service and reports
// whether the service is stopped (the pass then leaves it alone).
func (p *pass) stopped(svc *types.Service, tasks []*types.Task) bool {
	if !svc.IsStopped() {
		return false
	}
	for _, t := range tasks {
		if t.DesiredState == types.DesiredRunning {
			p.shutdown(t)
		}
	}
	return true
}

// restarted replaces cur when the service's last restart ends it, and
// reports whether it did.
func (p *pass) restarted(app *types.App, svc *types.Service, cur *types.Task, slot int, nodeID string) bool {
	if svc.Lifecycle == nil || !svc.Lifecycle.Restart || !svc.Lifecycle.Ends(cur) {
		return false
	}
	p.shutdown(cur)
	p.create(app.Name, svc, slot, nodeID, 0)
	return true
}

// restarting reports whether a replica's current task (in the pass's view)
// is one the service's restart ends: the pass replaces it, and judging the
// service now would judge the task on its way out, up while it stops. The
// next pass, which sees the replacements, judges it.
func restarting(svc *types.Service, replicas []rolloutSlot) bool {
	l := svc.Lifecycle
	if l == nil || !l.Restart {
		return false
	}
	for _, r := range replicas {
		if cur := current(r.history); cur != nil && l.Ends(cur) {
			return true
		}
	}
	return false
}
