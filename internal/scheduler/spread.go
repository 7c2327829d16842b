package scheduler

import (
	"github.com/berth-dev/berth/internal/types"
)

// spreadTree counts one service's tasks per group of nodes sharing label
// values, for each level of the service's spread preferences. Level k groups
// nodes by the values of the first k+1 preference labels, so spreading over
// "zone" then "rack" balances racks within the emptiest zone. A node
// without a label is in the group of the empty value.
//
// Groups count the service's tasks on every node of the cluster, eligible or
// not, so spreading reflects where the service actually runs; tasks being
// replaced are left out (see accountExisting).
type spreadTree struct {
	labels []string
	ids    []map[string]int32 // per level: joined label values -> group id
	counts [][]int32          // per level: tasks of the service per group id
}

func newSpreadTree(labels []string) *spreadTree {
	t := &spreadTree{
		labels: labels,
		ids:    make([]map[string]int32, len(labels)),
		counts: make([][]int32, len(labels)),
	}
	for k := range labels {
		t.ids[k] = map[string]int32{}
	}
	return t
}

// path returns the node's group id at each level, creating groups on first
// sight.
func (t *spreadTree) path(n *types.Node) []int32 {
	path := make([]int32, len(t.labels))
	key := ""
	for k, label := range t.labels {
		if k == 0 {
			key = n.Labels[label] // the common case builds no string
		} else {
			key = key + "\x00" + n.Labels[label]
		}
		id, ok := t.ids[k][key]
		if !ok {
			id = int32(len(t.counts[k]))
			t.ids[k][key] = id
			t.counts[k] = append(t.counts[k], 0)
		}
		path[k] = id
	}
	return path
}

// add records delta tasks in every group on the path.
func (t *spreadTree) add(path []int32, delta int32) {
	for k, id := range path {
		t.counts[k][id] += delta
	}
}

// unchanged reports whether the groups on path still hold the counts stored.
func (t *spreadTree) unchanged(stored []int32, path []int32) bool {
	for k, id := range path {
		if stored[k] != t.counts[k][id] {
			return false
		}
	}
	return true
}

// stamp copies the current counts of the groups on path into dst.
func (t *spreadTree) stamp(dst []int32, path []int32) {
	for k, id := range path {
		dst[k] = t.counts[k][id]
	}
}

// accountExisting records a task that already holds resources on node idx.
// A task on its way out (see leaving) keeps its resources, ports and place in
// the node's task count until it has stopped, but is not counted as one of
// its service's tasks there: spreading, the per-service score and
// max_replicas_per_node look at where the service will run, so a
// replacement balances the zones the way they will be once the old task is
// gone (4 replicas over two zones stay 2/2, not 3/1).
func (c *Cluster) accountExisting(idx int32, t *types.Task, svcID string, d demand) {
	if _, dup := c.placed[t.ID]; dup {
		return
	}
	c.account(idx, t.ID, svcID, d)
	if leaving(t, c.nodes[idx].node) {
		c.usage[svcID][idx]--
	}
}

// leaving reports whether a placed task is being replaced: told to shut
// down, or on a node being drained (its replacement is placed elsewhere
// before it stops).
func leaving(t *types.Task, n *types.Node) bool {
	return t.DesiredState == types.DesiredShutdown || n.Availability == types.AvailabilityDrain
}
