package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// defaultTTL is assumed when the manager does not say how long a node may
// stay silent.
const defaultTTL = 15 * time.Second

// registerUntilDone registers the node, retrying with backoff until the
// manager answers or ctx is done. It returns the heartbeat TTL.
func (a *Agent) registerUntilDone(ctx context.Context) (time.Duration, error) {
	retry := newBackoff(a.timing.RetryEvery)
	a.setDeadlines(defaultTTL)
	for {
		ttl, err := a.registerOnce(ctx)
		if err == nil {
			return ttl, nil
		}
		a.log.Warn("register with the manager failed; will retry", "manager", a.client.Addr(), "err", err)
		if !api.SleepCtx(ctx, retry.Next()) {
			return 0, ctx.Err()
		}
	}
}

func (a *Agent) registerOnce(ctx context.Context) (time.Duration, error) {
	resp, err := a.client.RegisterNode(ctx, a.node())
	if err != nil {
		return 0, a.explainRefusal(err)
	}
	a.learnManagers(resp.Managers)
	if resp.NodeID != "" && resp.NodeID != a.NodeID() {
		// Every call is authorised by the certificate's node ID, so no
		// other ID can work; this is a manager bug, reported until fixed.
		return 0, fmt.Errorf("manager registered this node as %s, but its certificate names it %s", resp.NodeID, a.NodeID())
	}
	ttl := resp.HeartbeatTTL
	if ttl <= 0 {
		ttl = defaultTTL
	}
	a.setDeadlines(ttl)
	return ttl, nil
}

// setDeadlines fits the client's deadlines to the heartbeat TTL: a manager
// that does not answer within a quarter of it (frozen, cut off) is left
// for another, and a call is retried across managers for half of it, so
// heartbeats reach a manager that works well before the TTL runs out.
func (a *Agent) setDeadlines(ttl time.Duration) {
	a.client.SetTimeouts(min(max(ttl/4, 250*time.Millisecond), 10*time.Second), max(ttl/2, time.Second))
}

// setNodeID makes id the node's ID, saving it in the local state when it
// differs from the one kept there.
func (a *Agent) setNodeID(id string) error {
	kept, err := a.store.NodeID()
	if err != nil {
		return fmt.Errorf("read node id: %w", err)
	}
	if kept != id {
		if kept != "" {
			a.log.Warn("the node's certificate names another node ID than its local state; the certificate wins", "old", kept, "new", id)
		}
		if err := a.store.SetNodeID(id); err != nil {
			return fmt.Errorf("save node id: %w", err)
		}
	}
	a.mu.Lock()
	a.nodeID = id
	a.mu.Unlock()
	return nil
}

// heartbeat keeps the node alive at the manager every TTL/3 (or
// cfg.HeartbeatEvery), and registers again when the manager has forgotten
// the node or another call found it unknown.
func (a *Agent) heartbeat(ctx context.Context, ttl time.Duration) {
	t := time.NewTicker(a.heartbeatEvery(ttl))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.register:
		case <-t.C:
			resp, err := a.client.Heartbeat(ctx, a.NodeID())
			if err == nil {
				a.learnManagers(resp.Managers)
				if next := resp.HeartbeatTTL; next > 0 && next != ttl {
					// The TTL follows the cluster's size (a larger
					// cluster beats less often).
					ttl = next
					a.setDeadlines(ttl)
					t.Reset(a.heartbeatEvery(ttl))
				}
				continue
			}
			if ctx.Err() != nil {
				continue
			}
			if !errors.Is(err, api.ErrNotFound) {
				a.log.Warn("heartbeat failed", "err", a.explainRefusal(err))
				continue
			}
			a.log.Warn("manager does not know this node; registering again")
		}
		registered, err := a.registerUntilDone(ctx)
		if err != nil {
			return
		}
		ttl = registered
		t.Reset(a.heartbeatEvery(ttl))
		signal(a.resync)
	}
}

func (a *Agent) heartbeatEvery(ttl time.Duration) time.Duration {
	if a.cfg.HeartbeatEvery > 0 {
		return a.cfg.HeartbeatEvery
	}
	return max(ttl/3, 10*time.Millisecond)
}

// sendStatus is the reporter's way to the manager.
func (a *Agent) sendStatus(ctx context.Context, statuses []types.TaskStatus) error {
	err := a.client.ReportStatus(ctx, a.NodeID(), statuses)
	if errors.Is(err, api.ErrNotFound) {
		signal(a.register)
	}
	return err
}
