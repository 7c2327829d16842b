package raftnode

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// leaderPoll is how often WaitLeader looks for a leader.
const leaderPoll = 20 * time.Millisecond

// IsLeader reports whether this server is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderCh delivers true when this server becomes the leader and false when
// it stops being it. Deliveries to a slow reader are coalesced: only the
// latest transition is kept, so the reader must check IsLeader for the
// current state. There is one channel per Node: one reader only.
func (n *Node) LeaderCh() <-chan bool { return n.raft.LeaderCh() }

// WaitLeader returns once the cluster has a leader known to this server
// (this server or another; see IsLeader), or ctx's error.
func (n *Node) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(leaderPoll)
	defer t.Stop()
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
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
