package server

import (
	"context"

	"github.com/berth-dev/berth/internal/controller"
	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// ApplyPlan is the leader's plan applier. The scheduler only proposes; here
// each placement is re-checked against the newest state (the node may be
// full, down or have the port taken by now) and the plan is committed in
// bounded Raft entries (TaskUpdates.Split). A placement that no longer fits
// leaves its task pending with the reason; the reconciler tries it again on
// the next change. Failure reasons are written only when they changed, so an
// unplaceable task does not cause a write per pass. A task whose node can
// get no address on one of its networks (the pool is exhausted) is one such
// placement: only it stays pending, with the setting to change.
func (s *Server) ApplyPlan(ctx context.Context, p scheduler.Plan) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	view := s.store.View()
	services := controller.Services(view)
	cluster := scheduler.NewCluster(view.Nodes(), controller.PlacedTasks(view), services)
	upd := &state.TaskUpdates{Pending: map[string]string{}, Now: s.clock.Now()}
	slices := newSliceTrial(view)
	for _, pl := range p.Placements {
		t := pendingTask(view, pl.TaskID)
		if t == nil {
			continue
		}
		svc := services[types.ServiceID(t.App, t.Service)]
		if svc == nil {
			continue
		}
		if err := slices.admit(t, svc, pl.NodeID); err != nil { // planslices.go
			setReason(upd, t, err.Error())
			continue
		}
		if err := cluster.Assign(scheduler.Request{Task: t, Service: svc}, pl.NodeID); err != nil {
			setReason(upd, t, err.Error())
			continue
		}
		upd.Assign = append(upd.Assign, state.Assignment{TaskID: t.ID, NodeID: pl.NodeID})
	}
	for _, f := range p.Failures {
		if t := pendingTask(view, f.TaskID); t != nil {
			setReason(upd, t, f.Reason)
		}
	}
	if len(upd.Assign) == 0 && len(upd.Pending) == 0 {
		return nil
	}
	for _, part := range upd.Split() { // bounded entries
		if _, err := s.Commit(ctx, part); err != nil {
			return err
		}
	}
	return nil
}

func pendingTask(view *state.View, id string) *types.Task {
	t := view.Task(id)
	if t == nil || t.State != types.TaskPending || t.DesiredState != types.DesiredRunning {
		return nil
	}
	return t
}

func setReason(upd *state.TaskUpdates, t *types.Task, reason string) {
	if t.PendingReason != reason {
		upd.Pending[t.ID] = reason
	}
}
