package raftnode

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// leaderRecheck bounds how long WaitLeader can miss a leadership change
// (raft drops observations a slow observer has not taken).
const leaderRecheck = time.Second

// IsLeader reports whether this server is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderCh delivers true when this server becomes the leader and false when
// it stops being it. Deliveries to a slow reader are coalesced: only the
// latest transition is kept, so the reader must check IsLeader for the
// current state. There is one channel per Node: one reader only.
func (n *Node) LeaderCh() <-chan bool { return n.raft.LeaderCh() }

// WaitLeader returns once this server is the leader, or ctx's error. On a
// follower it waits until an election makes this server the leader, so a
// manager's leader loop can be: WaitLeader, lead until LeaderCh says false,
// repeat. It does not consume LeaderCh.
func (n *Node) WaitLeader(ctx context.Context) error {
	changes := make(chan raft.Observation, 1)
	obs := raft.NewObserver(changes, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	// Register before the first check, so no change falls in between.
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	t := time.NewTicker(leaderRecheck)
	defer t.Stop()
	for !n.leads() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changes:
		case <-t.C:
		}
	}
	return nil
}

// leads reports whether this server is the leader and knows it: raft sets
// its state a moment before it records itself as leader, and callers of
// WaitLeader expect Leader to name this server.
func (n *Node) leads() bool {
	_, id := n.raft.LeaderWithID()
	return n.IsLeader() && id == n.id
}

// Leader returns the current leader's Raft address and ID, or empty
// strings when no leader is known.
func (n *Node) Leader() (addr, id string) {
	a, i := n.raft.LeaderWithID()
	return string(a), string(i)
}

// AppliedIndex is the index of the last entry raft handed to the FSM. Raft
// updates it concurrently with the FSM's work, so for a moment it may differ
// from what the FSM holds: use it for status and metrics, and the store's
// own indexes for blocking queries.
func (n *Node) AppliedIndex() uint64 { return n.raft.AppliedIndex() }

// Stats returns raft's own statistics (state, term, indexes, peers), for
// the operator's status output and metrics.
func (n *Node) Stats() map[string]string { return n.raft.Stats() }
