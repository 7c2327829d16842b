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
		n.Status = cmp.Or(n.Status, old.Status)
	} else {
		n.CreateIndex = w.index
		n.Availability = cmp.Or(n.Availability, types.AvailabilityActive)
		n.Status = cmp.Or(n.Status, types.NodeReady)
	}
	return n, w.insert(TableNodes, n)
}

func (c SetNodeStatus) apply(w *writeTxn) (any, error) {
	old := first[types.Node](w.txn, TableNodes, "id", c.ID)
	if old == nil {
		return nil, fmt.Errorf("node %s: %w", c.ID, ErrNotFound)
	}
	if old.Status == c.Status {
		return nil, nil
	}
	n := cloneNode(old)
	n.Status, n.ModifyIndex = c.Status, w.index
	return nil, w.insert(TableNodes, n)
}
