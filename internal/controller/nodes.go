package controller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// Heartbeats tells when a node last said it was alive. The leader keeps this
// in memory only: beats never reach Raft.
type Heartbeats interface {
	Last(nodeID string) (time.Time, bool)
}

// NodeMonitor marks nodes down when their heartbeat is older than TTL, and
// their unfinished tasks lost, so the Reconciler replaces them elsewhere.
type NodeMonitor struct {
	store  Store
	commit Committer
	beats  Heartbeats
	clock  Clock
	ttl    time.Duration
	log    *slog.Logger
	// since is when this leader took office: a node it has not heard from
	// yet gets a full TTL from then, so a new leader does not mark every
	// node down before the first beats reach it.
	since time.Time
}

// NewNodeMonitor builds a NodeMonitor; call it when leadership starts.
func NewNodeMonitor(store Store, commit Committer, beats Heartbeats, clock Clock, ttl time.Duration, log *slog.Logger) *NodeMonitor {
	if clock == nil {
		clock = RealClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &NodeMonitor{store: store, commit: commit, beats: beats, clock: clock, ttl: ttl, log: log, since: clock.Now()}
}

// Run checks nodes every quarter TTL until ctx is done.
func (m *NodeMonitor) Run(ctx context.Context) error {
	t := time.NewTicker(max(m.ttl/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.Check(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("node check failed", "err", err)
			}
		}
	}
}

// Check marks every ready node whose heartbeat expired down.
func (m *NodeMonitor) Check(ctx context.Context) error {
	now := m.clock.Now()
	view := m.store.View()
	for _, n := range view.Nodes() {
		if n.Status != types.NodeReady {
			continue
		}
		last, ok := m.beats.Last(n.ID)
		if !ok || last.Before(m.since) {
			last = m.since
		}
		if now.Sub(last) <= m.ttl {
			continue
		}
		m.log.Warn("node missed its heartbeats; marking it down", "node", n.Name, "id", n.ID, "silent", now.Sub(last).Round(time.Millisecond))
		if err := m.markDown(ctx, view, n, now); err != nil {
			return err
		}
	}
	return nil
}

func (m *NodeMonitor) markDown(ctx context.Context, view *state.View, n *types.Node, now time.Time) error {
	if _, err := m.commit.Commit(ctx, &state.SetNodeStatus{ID: n.ID, Status: types.NodeDown}); err != nil {
		return fmt.Errorf("mark node %s down: %w", n.Name, err)
	}
	var lost []types.TaskStatus
	for _, t := range view.Tasks(state.TaskFilter{NodeID: n.ID}) {
		if !t.State.Terminal() {
			lost = append(lost, types.TaskStatus{TaskID: t.ID, State: types.TaskLost, Error: "node " + n.Name + " is down", FinishedAt: now})
		}
	}
	if len(lost) == 0 {
		return nil
	}
	if _, err := m.commit.Commit(ctx, &state.TaskStatusUpdate{NodeID: n.ID, Statuses: lost, Now: now}); err != nil {
		return fmt.Errorf("mark tasks of node %s lost: %w", n.Name, err)
	}
	return nil
}
