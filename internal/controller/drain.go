package controller

import (
	"github.com/berth-dev/berth/internal/types"
)

// Draining a node moves its replicated tasks without a gap: the slot gets a
// replacement, and the old task keeps running (and serving its ports) until
// the replacement is placed on another node. A task that no other node can
// take thus keeps running, its replacement pending with the scheduler's
// reason in `ps`, until a node can take it or the drain is undone.
//
// A slot then briefly has two wanted tasks: the replacement, which is its
// current task, and the old one on the drained node, which handover stops.

// drain starts the replacement of cur, whose node is being drained; the old
// task is left to handover.
func (p *pass) drain(app *types.App, svc *types.Service, cur *types.Task, slot int, nodeID string) {
	p.create(app.Name, svc, slot, nodeID, cur.Attempt)
}

// handover settles the slot's wanted tasks other than cur and returns the
// task the slot should be reconciled by. A task on a drained node keeps
// running while cur, its replacement, is pending; once cur is placed it is
// stopped. If the node is active again while cur, its drain replacement,
// still waits, the drain was undone: cur is dropped and the old task stays
// the slot's task. An update started first (rollout.go) keeps the old task
// until cur, of the new version, is up; and a rollback keeps a task of the
// current version over a newer one of the version rolled back. Any other
// wanted task but cur is stopped.
func (p *pass) handover(svc *types.Service, history []*types.Task, cur *types.Task) *types.Task {
	if cur.ServiceVersion != svc.Version {
		for _, t := range history {
			if t != cur && t.DesiredState == types.DesiredRunning && !t.State.Terminal() && t.ServiceVersion == svc.Version {
				p.shutdown(cur)
				cur = t
				break
			}
		}
	}
	keep := cur
	up, _ := cur.Up(svc, p.now)
	for _, t := range history {
		if t == cur || t.DesiredState != types.DesiredRunning || t.State.Terminal() || p.upd.Desired[t.ID] == types.DesiredShutdown {
			continue
		}
		switch {
		case t.ServiceVersion != cur.ServiceVersion && cur.ServiceVersion == svc.Version && !up:
			// Started first: the old task serves until its replacement is up.
		case cur.State != types.TaskPending:
			p.shutdown(t)
		case p.drained(t):
			// Still needed: nothing has taken its place yet.
		case keep == cur && replaces(cur, t) && t.NodeID != "" && t.State != types.TaskPending:
			p.shutdown(cur)
			keep = t
		default:
			p.shutdown(t)
		}
	}
	return keep
}

// replaces reports whether cur is the drain replacement of t: the same
// spec and attempt, created after it (a restart or an update would differ).
func replaces(cur, t *types.Task) bool {
	return cur.ServiceVersion == t.ServiceVersion && cur.Attempt == t.Attempt && cur.CreateIndex > t.CreateIndex
}
