package scheduler

import (
	"slices"
	"strings"

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
// replaced are left out (see leaving).
type spreadTree struct {
	groups *spreadGroups
	counts [][]int32 // per level: tasks of the service per group id
}

// spreadGroups cuts the nodes into groups by the values of some labels; the
// Cluster shares one among every service spreading over the same labels.
type spreadGroups struct {
	labels []string
	ids    []map[string]int32 // per level: joined label values -> group id
	// leafPaths holds, per group id of the last level, the group's id at
	// every level.
	leafPaths [][]int32
	leafOf    []int32 // per slot: the node's leaf group, -1 until looked up
}

func newSpreadTree(groups *spreadGroups) *spreadTree {
	return &spreadTree{groups: groups, counts: make([][]int32, len(groups.labels))}
}

// spreadGroups returns the Cluster's grouping of the nodes by labels.
func (c *Cluster) spreadGroups(labels []string) *spreadGroups {
	key := strings.Join(labels, "\x00")
	g := c.groupings[key]
	if g == nil {
		g = &spreadGroups{labels: labels, ids: make([]map[string]int32, len(labels))}
		for k := range labels {
			g.ids[k] = map[string]int32{}
		}
		if c.groupings == nil {
			c.groupings = map[string]*spreadGroups{}
		}
		c.groupings[key] = g
	}
	return g
}

// leaf returns the id of node idx's innermost group, creating groups on
// first sight; leafPaths[leaf] is then its group id at each level.
func (g *spreadGroups) leaf(idx int32, n *types.Node) int32 {
	for int(idx) >= len(g.leafOf) {
		g.leafOf = append(g.leafOf, -1)
	}
	if l := g.leafOf[idx]; l >= 0 {
		return l
	}
	var buf [8]int32
	path := buf[:0]
	key := ""
	for k, label := range g.labels {
		if k == 0 {
			key = n.Labels[label] // the common case builds no string
		} else {
			key = key + "\x00" + n.Labels[label]
		}
		id, ok := g.ids[k][key]
		if !ok {
			id = int32(len(g.ids[k]))
			g.ids[k][key] = id
		}
		path = append(path, id)
	}
	leaf := path[len(path)-1]
	if int(leaf) == len(g.leafPaths) {
		g.leafPaths = append(g.leafPaths, slices.Clone(path))
	}
	g.leafOf[idx] = leaf
	return leaf
}

// add records delta tasks in every group on the path.
func (t *spreadTree) add(path []int32, delta int32) {
	for k, id := range path {
		for int(id) >= len(t.counts[k]) {
			t.counts[k] = append(t.counts[k], 0)
		}
		t.counts[k][id] += delta
	}
}

func (t *spreadTree) count(k int, id int32) int32 {
	if int(id) < len(t.counts[k]) {
		return t.counts[k][id]
	}
	return 0
}

// unchanged reports whether the groups on path still hold the counts stored.
func (t *spreadTree) unchanged(stored []int32, path []int32) bool {
	for k, id := range path {
		if stored[k] != t.count(k, id) {
			return false
		}
	}
	return true
}

// stamp copies the current counts of the groups on path into dst.
func (t *spreadTree) stamp(dst []int32, path []int32) {
	for k, id := range path {
		dst[k] = t.count(k, id)
	}
}

// leaving reports whether a placed task is being replaced: told to shut
// down, or on a node being drained (its replacement is placed elsewhere
// before it stops). Such a task keeps its resources, ports and place in the
// node's task count until it has stopped, but is not counted as one of its
// service's tasks there: spreading, the per-service score and
// max_replicas_per_node look at where the service will run, so a
// replacement balances the zones the way they will be once the old task is
// gone (4 replicas over two zones stay 2/2, not 3/1).
func leaving(shutdown, onDrained bool) bool { return shutdown || onDrained }

func isDraining(n *types.Node) bool { return n.Availability == types.AvailabilityDrain }
