package controller

import (
	"sort"

	"github.com/berth-dev/berth/internal/types"
)

// gc deletes the finished tasks of one app (tasks) beyond the newest keep of each slot, so task
// history (and the Raft snapshot) stays bounded however often tasks restart.
// A task is finished when it is terminal and no longer wanted; the slot's
// current task is never deleted.
func (p *pass) gc(tasks []*types.Task, keep int) {
	type slotKey struct {
		app, service, node string
		slot               int
	}
	slots := map[slotKey][]*types.Task{}
	for _, t := range tasks {
		if !t.State.Terminal() || (t.DesiredState != types.DesiredShutdown && p.upd.Desired[t.ID] != types.DesiredShutdown) {
			continue
		}
		k := slotKey{t.App, t.Service, "", t.Slot}
		if t.Slot == 0 {
			k.node = t.NodeID
		}
		slots[k] = append(slots[k], t)
	}
	for _, ts := range slots {
		if len(ts) <= keep {
			continue
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i].CreateIndex > ts[j].CreateIndex })
		for _, t := range ts[keep:] {
			p.upd.Delete = append(p.upd.Delete, t.ID)
			delete(p.upd.Desired, t.ID)
		}
	}
}
