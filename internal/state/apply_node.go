package state

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

func (c UpsertNode) apply(w *writeTxn) (any, error) {
	if c.Node == nil || c.Node.ID == "" {
		return nil, errors.New("upsert node: the node has no ID")
	}
	n := cloneNode(c.Node)
	n.LastHeartbeat = time.Time{} // lives in the leader's memory, not in Raft
	n.ModifyIndex = w.index
	if old := first[types.Node](w.txn, TableNodes, "id", n.ID); old != nil {
		n.CreateIndex = old.CreateIndex
		n.Availability = cmp.Or(n.Availability, old.Availability)
		// Labels an operator added survive the agent registering again;
		// the agent's own (--label) overwrite theirs of the same key.
		n.Labels = mergeLabels(old.Labels, n.Labels)
		n.Status = cmp.Or(n.Status, old.Status)
	} else {
		n.CreateIndex = w.index
		n.Availability = cmp.Or(n.Availability, types.AvailabilityActive)
		n.Status = cmp.Or(n.Status, types.NodeReady)
		// The node's tasks key exists from its first day, so its agent's
		// blocking query watches that key alone (see seedIndexes), not
		// every node's and the whole tasks table until a task lands.
		if err := w.markNode(n.ID); err != nil {
			return nil, err
		}
	}
	if err := allocateNodeMeshSlices(w, n); err != nil {
		return nil, err
	}
	return n, w.insert(TableNodes, n)
}

func (c SetNodeStatus) apply(w *writeTxn) (any, error) {
	old := first[types.Node](w.txn, TableNodes, "id", c.ID)
	if old == nil {
		return nil, fmt.Errorf("node %s: %w", c.ID, ErrNotFound)
	}
	if c.Status == types.NodeDown && !c.Now.IsZero() {
		// Also when the node was down already: a task placed on it since,
		// or left running by an old two-step entry, is lost all the same.
		if err := loseTasks(w, old, "node "+old.Name+" is down", c.Now, false); err != nil {
			return nil, err
		}
	}
	if old.Status == c.Status {
		return nil, nil
	}
	n := cloneNode(old)
	n.Status, n.ModifyIndex = c.Status, w.index
	return nil, w.insert(TableNodes, n)
}

// loseTasks marks every unfinished task of node n lost, for reason, at now;
// with shutdown it also tells every task of n to shut down (the node is
// gone for good).
func loseTasks(w *writeTxn, n *types.Node, reason string, now time.Time, shutdown bool) error {
	for _, t := range listTasks(w.txn, TaskFilter{NodeID: n.ID}) {
		err := updateTask(w, t.ID, func(t *types.Task) bool {
			changed := false
			if !t.State.Terminal() {
				t.State, t.Error, t.FinishedAt = types.TaskLost, reason, now
				changed = true
			}
			if shutdown && t.DesiredState != types.DesiredShutdown {
				t.DesiredState = types.DesiredShutdown
				changed = true
			}
			return changed
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (c SetNodeAvailability) apply(w *writeTxn) (any, error) {
	switch c.Availability {
	case types.AvailabilityActive, types.AvailabilityDrain:
	default:
		return nil, fmt.Errorf("node %s: availability %q is not active or drain", c.ID, c.Availability)
	}
	return updateNode(w, c.ID, func(n *types.Node) bool {
		if n.Availability == c.Availability {
			return false
		}
		n.Availability = c.Availability
		return true
	})
}

func (c UpdateNodeLabels) apply(w *writeTxn) (any, error) {
	return updateNode(w, c.ID, func(n *types.Node) bool {
		labels := mergeLabels(n.Labels, c.Add)
		for _, k := range c.Remove {
			delete(labels, k)
		}
		if jsonEqual(labels, n.Labels) {
			return false
		}
		n.Labels = labels
		return true
	})
}

func (c DeleteNode) apply(w *writeTxn) (any, error) {
	n := first[types.Node](w.txn, TableNodes, "id", c.ID)
	if n == nil {
		return nil, fmt.Errorf("node %s: %w", c.ID, ErrNotFound)
	}
	if err := loseTasks(w, n, "node "+n.Name+" was removed", c.Now, true); err != nil {
		return nil, err
	}
	if err := releaseNode(w, n.ID); err != nil { // netpool.go
		return nil, err
	}
	return nil, w.delete(TableNodes, n)
}

// updateNode applies change to a copy of the node and stores it when change
// reports a difference. Result: the node as stored.
func updateNode(w *writeTxn, id string, change func(*types.Node) bool) (any, error) {
	old := first[types.Node](w.txn, TableNodes, "id", id)
	if old == nil {
		return nil, fmt.Errorf("node %s: %w", id, ErrNotFound)
	}
	n := cloneNode(old)
	if !change(n) {
		return old, nil
	}
	n.ModifyIndex = w.index
	return n, w.insert(TableNodes, n)
}

func mergeLabels(base, over map[string]string) map[string]string {
	if len(base) == 0 && len(over) == 0 {
		return nil
	}
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}
