package scheduler

import (
	"container/heap"
	"math"

	"github.com/berth-dev/berth/internal/types"
)

// candidates finds, for one service spec, the best feasible node without
// scanning every node per placement. The Cluster keeps it across Place
// calls, so a task placed alone costs a few heap operations too.
//
// Eligible nodes (those passing the static filters) sit in one min-heap per
// spread group, and the groups sit in a min-heap of their own. Every heap
// key is a stamp taken when the entry was last looked at. Placing only adds
// tasks, so true keys only grow and a stamp is a lower bound: when the top's
// stamp still matches its true key it is the true minimum, and when it does
// not it is re-stamped and sifted down; a node found infeasible at the top
// is dropped. What can make a node better or feasible again (a task left
// it, the node changed) the Cluster logs in touched, and sync applies it
// before the next choice: the node's entry is fixed, or the node put back.
//
// On a large cluster the heaps start with a sample of the nodes rather than
// all of them (as Kubernetes' percentageOfNodesToScore), walked in a
// pseudo-random order so every zone and rack is represented, and grow by
// another sample whenever the best node of the sample runs more of the
// service's tasks than the cluster's mean, or a group runs out, or nothing
// in the sample fits. So the service spreads as evenly as with every node
// scored, a node that fits is always found, and "nothing fits" is only said
// once every node was looked at.
type candidates struct {
	c       *Cluster
	v       *serviceView
	svc     *svcState
	key     candKey
	pos     []int32 // per slot: index in its group's heap, -1 when out
	tree    *spreadTree
	byLeaf  []*group // per leaf group id
	groups  groupHeap
	seen    int  // position in the Cluster's touched log applied
	restamp bool // a group's stamp may exceed its true key: stamp them all again

	// The walk over slots [0, walkN) goes through blocks of walkBlock
	// consecutive slots (read in order, which memory serves fast), block
	// (start + i*stride) mod blocks for the i-th: neighbours in ID order
	// are sampled together, blocks far apart in ID order one after another.
	walkN, walkBlocks, walkStart, walkStride int
	walked                                   int // blocks walked
	chunk                                    int // eligible nodes to add per sample
	complete                                 bool

	lastUse uint64 // Cluster.calls when last used

	reason    string // why nothing fits, as of Cluster.gen == reasonGen
	reasonGen uint64
}

// scoreAll is the cluster size up to which every node is scored; above it
// the heaps start with a sample (sampleSize).
var scoreAll = 1000

// sampleSize is how many eligible nodes a sample adds: Kubernetes' adaptive
// percentage (50% less 1% per 125 nodes, at least 5%), and at least 500.
func sampleSize(live int) int {
	pct := max(5, 50-live/125)
	return max(500, live*pct/100)
}

// walkBlock is how many consecutive slots the sampling walk reads at once.
const walkBlock = 32

// fnv1a hashes a service ID to where its walk starts: the same in every
// process, so the same inputs give the same plan on any manager.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// want is how many tasks of the spec the caller is about to place: the
// first sample holds at least as many nodes, so that they can spread one
// per node without widening the sample as they go.
func newCandidates(c *Cluster, v *serviceView, s *svcState, key candKey, want int) *candidates {
	k := &candidates{c: c, v: v, svc: s, key: key, tree: newSpreadTree(c.spreadGroups(v.prefs))}
	k.ensure(len(c.nodes))
	if len(v.prefs) > 0 {
		for idx, n := range s.counts {
			if n != 0 {
				k.tree.add(k.pathOf(int32(idx)), n)
			}
		}
	}
	k.walkN = len(c.nodes)
	k.walkBlocks = (k.walkN + walkBlock - 1) / walkBlock
	k.chunk, k.walkStride = k.walkN, 1
	if c.live > scoreAll {
		k.chunk = sampleSize(c.live)
		// The same service starts at the same place: plans stay
		// deterministic for the same inputs.
		k.walkStart = int(fnv1a(s.id) % uint64(k.walkBlocks))
		k.walkStride = coprimeStride(k.walkBlocks)
	}
	k.seen = c.touchedBase + len(c.touched)
	first := k.chunk
	k.chunk = max(k.chunk, min(want, k.walkN))
	k.grow()
	k.chunk = first
	return k
}

// coprimeStride returns a step near n/φ sharing no factor with n, so that
// the walk visits every slot once and neighbours in ID order far apart.
func coprimeStride(n int) int {
	s := max(1, int(float64(n)/math.Phi))
	for gcd(s, n) != 1 {
		s++
	}
	return s
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ensure sizes the per-slot arrays for n slots.
func (k *candidates) ensure(n int) {
	if len(k.pos) >= n {
		return
	}
	from := len(k.pos)
	k.pos = append(k.pos, make([]int32, n-from)...)
	for i := from; i < n; i++ {
		k.pos[i] = -1
	}
}

// grow adds the next sample of the walk to the heaps; it reports whether it
// added a node.
func (k *candidates) grow() bool {
	added := 0
	var grown []*group
	for k.walked < k.walkBlocks && added < k.chunk {
		first := (k.walkStart + k.walked*k.walkStride) % k.walkBlocks * walkBlock
		k.walked++
		for idx := int32(first); idx < int32(min(first+walkBlock, k.walkN)); idx++ {
			n := k.c.nodes[idx]
			if k.pos[idx] >= 0 || n.dead || !k.v.staticReject(n.node).ok() {
				continue
			}
			g := k.groupOf(idx)
			if g.at != -2 {
				grown = append(grown, g)
				g.at = -2 // marked as in grown; regroup sets it again
			}
			k.pos[idx] = int32(len(g.nodes))
			g.nodes = append(g.nodes, k.score(idx))
			added++
		}
	}
	k.complete = k.walked == k.walkBlocks
	for _, g := range grown {
		g.at = -1
		g.nodes.init(k.pos)
	}
	k.regroup()
	return added > 0
}

// regroup stamps every group afresh and rebuilds the group heap.
func (k *candidates) regroup() {
	k.groups = k.groups[:0]
	for _, g := range k.byLeaf {
		if g == nil {
			continue
		}
		g.at = -1
		if len(g.nodes) > 0 {
			k.stamp(g)
			g.at = len(k.groups)
			k.groups = append(k.groups, g)
		}
	}
	heap.Init(&k.groups)
	k.restamp = false
}

func (k *candidates) groupOf(idx int32) *group {
	var leaf int32
	if len(k.v.prefs) > 0 {
		leaf = k.leaf(idx)
	}
	for int(leaf) >= len(k.byLeaf) {
		k.byLeaf = append(k.byLeaf, nil)
	}
	g := k.byLeaf[leaf]
	if g == nil {
		path := k.pathOf(idx)
		g = &group{path: path, counts: make([]int32, len(path)), at: -1}
		k.byLeaf[leaf] = g
	}
	return g
}

func (k *candidates) leaf(idx int32) int32 {
	return k.tree.groups.leaf(idx, k.c.nodes[idx].node)
}

func (k *candidates) pathOf(idx int32) []int32 {
	if len(k.v.prefs) == 0 {
		return nil
	}
	return k.tree.groups.leafPaths[k.leaf(idx)]
}

// score computes node idx's current score for this service.
func (k *candidates) score(idx int32) score {
	n := k.c.nodes[idx]
	return score{svc: k.svc.count(idx), tasks: n.tasks, mem: n.reserved.MemoryBytes, idx: idx, rank: n.rank}
}

func (k *candidates) stamp(g *group) {
	k.tree.stamp(g.counts, g.path)
	g.best = g.nodes[0]
}

// sync applies what the Cluster logged since this candidates last looked.
func (k *candidates) sync() {
	c := k.c
	k.ensure(len(c.nodes))
	for _, idx := range c.touched[k.seen-c.touchedBase:] {
		k.touch(idx)
	}
	k.seen = c.touchedBase + len(c.touched)
	if k.restamp {
		k.regroup()
	}
}

// touch fixes node idx's entry after it may have got better, puts the node
// (back) in the heaps if it is eligible, or takes it out if it no longer
// is (down, drained, its drivers changed).
func (k *candidates) touch(idx int32) {
	k.restamp = true
	n := k.c.nodes[idx]
	eligible := !n.dead && k.v.staticReject(n.node).ok()
	switch p := k.pos[idx]; {
	case p >= 0 && !eligible:
		k.groupOf(idx).nodes.remove(int(p), k.pos)
	case p >= 0:
		g := k.groupOf(idx)
		g.nodes[p] = k.score(idx)
		g.nodes.fix(int(p), k.pos)
	case eligible:
		k.groupOf(idx).nodes.push(k.score(idx), k.pos)
	}
}

// next returns the best feasible node, or false when none is left.
func (k *candidates) next() (int32, bool) {
	k.sync()
	for {
		if len(k.groups) == 0 {
			if k.complete {
				return 0, false
			}
			k.grow()
			continue
		}
		g := k.groups[0]
		if !k.settle(g) {
			heap.Pop(&k.groups)
			if !k.complete {
				k.grow() // the group may have nodes not sampled yet
			}
			continue
		}
		if g.best != g.nodes[0] || !k.tree.unchanged(g.counts, g.path) {
			k.stamp(g)
			heap.Fix(&k.groups, 0)
			if k.groups[0] != g {
				continue
			}
			// Still the best group, now with its true key: its top is
			// settled, so it is the answer.
		}
		best := g.nodes[0]
		if !k.complete && best.svc > k.svc.total/int32(k.c.live) {
			k.grow() // the sample is full of the service: widen it
			continue
		}
		return best.idx, true
	}
}

// settle brings the group's top to its best feasible node, dropping the
// infeasible ones; it reports false when the group has none left.
func (k *candidates) settle(g *group) bool {
	for len(g.nodes) > 0 {
		top := g.nodes[0]
		if cur := k.score(top.idx); cur != top {
			g.nodes[0] = cur
			g.nodes.fix(0, k.pos)
			continue
		}
		// Only eligible nodes are in the heaps (touch takes out those that
		// stop being): the static filters need not run again.
		if !k.v.dynamicReject(k.c.nodes[top.idx], k.svc.count(top.idx)).ok() {
			g.nodes.remove(0, k.pos)
			continue
		}
		return true
	}
	return false
}

// count records delta tasks of this service on node idx, placed or gone by
// anyone (the Cluster calls it).
func (k *candidates) count(idx int32, delta int32) {
	k.tree.add(k.pathOf(idx), delta)
	if delta < 0 {
		k.restamp = true
	}
}

// explain says why nothing fits, reusing the last answer while the cluster
// has not changed.
func (k *candidates) explain() string {
	if k.reason == "" || k.reasonGen != k.c.gen {
		k.reason, k.reasonGen = k.c.explain(k.v, k.svc.id), k.c.gen
	}
	return k.reason
}

// candKey identifies a candidates cache: tasks of one service ID may come
// with different specs (an update in flight), and each spec filters nodes
// its own way.
type candKey struct {
	svcID string
	svc   *types.Service
}

// maxCached bounds the candidates a Cluster keeps between Place calls.
const maxCached = 64

// candidatesFor returns the cached candidates of a spec, building them on
// first use.
func (c *Cluster) candidatesFor(svcID string, svc *types.Service, v *serviceView, want int) *candidates {
	key := candKey{svcID, svc}
	k := c.cands[key]
	if k == nil {
		s := c.svc(svcID)
		k = newCandidates(c, v, s, key, want)
		c.cands[key] = k
		s.cands = append(s.cands, k)
	}
	k.lastUse = c.calls
	return k
}

// dropCandidates forgets every cached candidates: a change they cannot
// follow (labels, a node gone) happened.
func (c *Cluster) dropCandidates() {
	for key, k := range c.cands {
		c.forget(key, k)
	}
	c.groupings = nil
	c.touchedBase += len(c.touched)
	c.touched = c.touched[:0]
}

func (c *Cluster) forget(key candKey, k *candidates) {
	delete(c.cands, key)
	s := k.svc
	for i, o := range s.cands {
		if o == k {
			s.cands = append(s.cands[:i], s.cands[i+1:]...)
			break
		}
	}
	c.forgetIfUnused(s)
}

// tidy, after a Place call, evicts the least recently used candidates past
// maxCached and, when the touched log has grown long, brings every cached
// candidates up to date so the log can be emptied.
func (c *Cluster) tidy() {
	for len(c.cands) > maxCached {
		var oldKey candKey
		var old *candidates
		for key, k := range c.cands {
			if old == nil || k.lastUse < old.lastUse {
				oldKey, old = key, k
			}
		}
		c.forget(oldKey, old)
	}
	if len(c.touched) > max(4096, len(c.nodes)) {
		for _, k := range c.cands {
			k.sync()
		}
	}
	if len(c.cands) == 0 || len(c.touched) > max(4096, len(c.nodes)) {
		c.touchedBase += len(c.touched)
		c.touched = c.touched[:0]
	}
}
