package scheduler

import (
	"container/heap"
	"slices"
)

// candidates finds, for one service during one Place call, the best feasible
// node without scanning every node per placement.
//
// Eligible nodes (those passing the static filters) sit in one min-heap per
// spread group, and the groups sit in a min-heap of their own. Every heap
// key is a stamp taken when the entry was last looked at. Placing only ever
// adds tasks, so true keys only grow and a stamp is a lower bound: when the
// top's stamp still matches its true key it is the true minimum, and when it
// does not it is re-stamped and sifted down. Feasibility only shrinks the
// same way, so a node found infeasible at the top is dropped for good. Each
// placement thus costs a few heap operations, plus one repair for every
// entry that another placement made stale.
type candidates struct {
	c        *Cluster
	v        *serviceView
	svcID    string
	svcTasks []int32 // tasks of this service per node index
	tree     *spreadTree
	paths    [][]int32 // spread path per node index, filled on first use
	groups   groupHeap

	reason    string // why nothing fits, as of Cluster.gen == reasonGen
	reasonGen uint64
}

func newCandidates(c *Cluster, v *serviceView, svcID string) *candidates {
	k := &candidates{
		c:        c,
		v:        v,
		svcID:    svcID,
		svcTasks: make([]int32, len(c.nodes)),
		tree:     newSpreadTree(v.prefs),
	}
	if len(v.prefs) > 0 {
		k.paths = make([][]int32, len(c.nodes))
	}
	for idx, n := range c.usage[svcID] {
		k.svcTasks[idx] = n
		k.tree.add(k.pathOf(idx), n)
	}
	k.buildGroups()
	return k
}

// buildGroups puts every node that passes the static filters in the heap of
// its spread group.
func (k *candidates) buildGroups() {
	byLeaf := map[int32]*group{}
	if len(k.v.prefs) == 0 {
		// One group holds every node: size its heap once.
		k.groups = groupHeap{{nodes: make(nodeHeap, 0, len(k.c.nodes))}}
		byLeaf[0] = k.groups[0]
	}
	for i, n := range k.c.nodes {
		idx := int32(i)
		if !k.v.staticReject(n.node).ok() {
			continue
		}
		path := k.pathOf(idx)
		var leaf int32
		if len(path) > 0 {
			leaf = path[len(path)-1]
		}
		g := byLeaf[leaf]
		if g == nil {
			g = &group{path: path, counts: make([]int32, len(path))}
			byLeaf[leaf] = g
			k.groups = append(k.groups, g)
		}
		g.nodes = append(g.nodes, k.score(idx))
	}
	k.groups = slices.DeleteFunc(k.groups, func(g *group) bool { return len(g.nodes) == 0 })
	for _, g := range k.groups {
		heap.Init(&g.nodes)
		k.stamp(g)
	}
	heap.Init(&k.groups)
}

func (k *candidates) pathOf(idx int32) []int32 {
	if len(k.v.prefs) == 0 {
		return nil
	}
	if k.paths[idx] == nil {
		k.paths[idx] = k.tree.path(k.c.nodes[idx].node)
	}
	return k.paths[idx]
}

// score computes node idx's current score for this service.
func (k *candidates) score(idx int32) score {
	n := k.c.nodes[idx]
	return score{svc: k.svcTasks[idx], tasks: n.tasks, mem: n.reserved.MemoryBytes, idx: idx}
}

func (k *candidates) stamp(g *group) {
	k.tree.stamp(g.counts, g.path)
	g.best = g.nodes[0]
}

// next returns the best feasible node, or false when none is left.
func (k *candidates) next() (int32, bool) {
	for len(k.groups) > 0 {
		g := k.groups[0]
		if !k.settle(g) {
			heap.Pop(&k.groups)
			continue
		}
		if g.best != g.nodes[0] || !k.tree.unchanged(g.counts, g.path) {
			k.stamp(g)
			heap.Fix(&k.groups, 0)
			continue
		}
		return g.nodes[0].idx, true
	}
	return 0, false
}

// settle brings the group's top to its best feasible node, dropping the
// infeasible ones; it reports false when the group has none left.
func (k *candidates) settle(g *group) bool {
	for len(g.nodes) > 0 {
		top := g.nodes[0]
		if cur := k.score(top.idx); cur != top {
			g.nodes[0] = cur
			heap.Fix(&g.nodes, 0)
			continue
		}
		if !k.v.dynamicReject(k.c.nodes[top.idx], k.svcTasks[top.idx]).ok() {
			heap.Pop(&g.nodes)
			continue
		}
		return true
	}
	return false
}

// placed records a task of this service placed on node idx by anyone.
func (k *candidates) placed(idx int32) {
	k.svcTasks[idx]++
	k.tree.add(k.pathOf(idx), 1)
}

// explain says why nothing fits, reusing the last answer while the cluster
// has not changed.
func (k *candidates) explain() string {
	if k.reason == "" || k.reasonGen != k.c.gen {
		k.reason, k.reasonGen = k.c.explain(k.v, k.svcID), k.c.gen
	}
	return k.reason
}
