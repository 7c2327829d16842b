package scheduler

import "slices"

// score is a node's rank for one service, as last computed. Lower is better,
// compared field by field: fewer tasks of the service (spread the replicas),
// fewer tasks overall, less memory reserved, then the lower node ID (rank:
// the node's place in ID order, so ties break the same way every time,
// whatever order the view learnt the nodes in). idx is the node's slot.
type score struct {
	svc   int32
	tasks int32
	mem   int64
	idx   int32
	rank  int32
}

func (a score) less(b score) bool {
	switch {
	case a.svc != b.svc:
		return a.svc < b.svc
	case a.tasks != b.tasks:
		return a.tasks < b.tasks
	case a.mem != b.mem:
		return a.mem < b.mem
	}
	return a.rank < b.rank
}

// nodeHeap is a min-heap of scores that keeps each node's position in pos
// (indexed by slot, -1 when not in a heap), so any entry can be fixed after
// its node got better. The heap code is written out rather than through
// container/heap: its interface calls were most of the cost of a placement.
type nodeHeap []score

func (h nodeHeap) swap(i, j int, pos []int32) {
	h[i], h[j] = h[j], h[i]
	pos[h[i].idx], pos[h[j].idx] = int32(i), int32(j)
}

func (h nodeHeap) up(j int, pos []int32) {
	for j > 0 {
		i := (j - 1) / 2
		if !h[j].less(h[i]) {
			break
		}
		h.swap(i, j, pos)
		j = i
	}
}

func (h nodeHeap) down(i int, pos []int32) bool {
	i0, n := i, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h[r].less(h[l]) {
			j = r
		}
		if !h[j].less(h[i]) {
			break
		}
		h.swap(i, j, pos)
		i = j
	}
	return i > i0
}

func (h nodeHeap) fix(i int, pos []int32) {
	if !h.down(i, pos) {
		h.up(i, pos)
	}
}

func (h nodeHeap) init(pos []int32) {
	for i, s := range h {
		pos[s.idx] = int32(i)
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i, pos)
	}
}

func (h *nodeHeap) push(s score, pos []int32) {
	*h = append(*h, s)
	pos[s.idx] = int32(len(*h) - 1)
	h.up(len(*h)-1, pos)
}

// remove takes entry i out of the heap.
func (h *nodeHeap) remove(i int, pos []int32) {
	old := *h
	n := len(old) - 1
	if i != n {
		old.swap(i, n, pos)
	}
	pos[old[n].idx] = -1
	*h = old[:n]
	if i != n {
		h.fix(i, pos)
	}
}

// group is the eligible nodes that share every spread label value. Its place
// in the group heap is its stamp: the spread counts of its groups at each
// level and its best node's score, as last seen.
type group struct {
	path   []int32 // spreadTree group id per level
	nodes  nodeHeap
	counts []int32
	best   score
	at     int // index in the group heap, -1 when out of it
}

func (a *group) less(b *group) bool {
	if c := slices.Compare(a.counts, b.counts); c != 0 {
		return c < 0
	}
	return a.best.less(b.best)
}

// groupHeap is a min-heap of groups by stamp (container/heap.Interface,
// keeping each group's index in at). There are few groups and one fix per
// placement, so it goes through container/heap.
type groupHeap []*group

func (h groupHeap) Len() int           { return len(h) }
func (h groupHeap) Less(i, j int) bool { return h[i].less(h[j]) }
func (h groupHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].at, h[j].at = i, j
}
func (h *groupHeap) Push(x any) {
	g := x.(*group)
	g.at = len(*h)
	*h = append(*h, g)
}
func (h *groupHeap) Pop() any {
	old := *h
	g := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	g.at = -1
	return g
}
