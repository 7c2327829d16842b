package state

import (
	"slices"
	"strings"
)

// One entry creating or assigning every task of a large deploy does not
// scale: 100,000 replicas were one TaskUpdates of ~100 MB, which each
// manager had to receive, decode and apply in one store write, with Raft's
// heartbeats and every agent's calls waiting behind it (issue 20). An
// entry carries at most this many new tasks, and this many placements.
// Past about 2,000 keys changed in one index, memdb's radix tree stops
// tracking which watches to fire and walks the whole tree at commit
// (iradix's slowNotify): 31% of the FSM's time in that run.
const (
	maxCreatesPerEntry = 1024
	maxAssignsPerEntry = 1024
	// MaxStatusesPerEntry bounds the task statuses the leader groups into
	// one TaskStatusBatch (server/reports.go), for the same reason: at
	// 100,000 tasks a group of 2,048 cost 40-46 µs a status to apply, one
	// of 1,024 19-22 µs (BenchmarkStatusBatch).
	MaxStatusesPerEntry = 1024
)

// Split cuts u into entries of bounded size that, committed in order, give
// what u gives at once: the creations first, then the placements, and the
// last entry carries the rest of them with the pending reasons, desired
// states, grace and deletions, which TaskUpdates applies after creations
// and placements too. A u within the bounds comes back whole.
//
// Between the entries the store holds part of the change. That is a state
// the reconciler may see anyway (a leader lost after some of a pass's
// entries): it goes on from what is stored.
func (u *TaskUpdates) Split() []*TaskUpdates {
	if len(u.Create) <= maxCreatesPerEntry && len(u.Assign) <= maxAssignsPerEntry {
		return []*TaskUpdates{u}
	}
	var out []*TaskUpdates
	creates, assigns := u.Create, u.Assign
	if len(assigns) > maxAssignsPerEntry {
		// Each node's placements together, in the scheduler's order: a
		// spread plan places round the nodes, so every bounded entry held
		// a task or two for every node, and each woke every node's agent,
		// which fetched its whole task list again for them. At 1,000 nodes
		// x 100,000 tasks that was ~30 answers per node, a seventh of the
		// leader's CPU and a quarter of the sim's in encoding and decoding
		// them. Grouped, a node is in one or two entries.
		assigns = slices.Clone(assigns)
		slices.SortStableFunc(assigns, func(a, b Assignment) int { return strings.Compare(a.NodeID, b.NodeID) })
	}
	for len(creates) > maxCreatesPerEntry {
		out = append(out, &TaskUpdates{Create: creates[:maxCreatesPerEntry], Now: u.Now})
		creates = creates[maxCreatesPerEntry:]
	}
	for len(assigns) > maxAssignsPerEntry {
		// The creations left over come first in the entry, as they apply.
		out = append(out, &TaskUpdates{Create: creates, Assign: assigns[:maxAssignsPerEntry], Now: u.Now})
		creates, assigns = nil, assigns[maxAssignsPerEntry:]
	}
	return append(out, &TaskUpdates{Create: creates, Assign: assigns, Pending: u.Pending, Desired: u.Desired,
		Delete: u.Delete, Grace: u.Grace, Now: u.Now})
}
