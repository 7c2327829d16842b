package scheduler

import "slices"

// score is a node's rank for one service, as last computed. Lower is better,
// compared field by field: fewer tasks of the service (spread the replicas),
// fewer tasks overall, less memory reserved, then the lower node ID (idx is
// the node's rank in ID order, so ties break the same way every time).
type score struct {
	svc   int32
	tasks int32
	mem   int64
	idx   int32
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
	return a.idx < b.idx
}

// nodeHeap is a min-heap of scores (container/heap.Interface).
type nodeHeap []score

func (h nodeHeap) Len() int           { return len(h) }
func (h nodeHeap) Less(i, j int) bool { return h[i].less(h[j]) }
func (h nodeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nodeHeap) Push(x any)        { *h = append(*h, x.(score)) }
func (h *nodeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// group is the eligible nodes that share every spread label value. Its place
// in the group heap is its stamp: the spread counts of its groups at each
// level and its best node's score, as last seen.
type group struct {
	path   []int32 // spreadTree group id per level
	nodes  nodeHeap
	counts []int32
	best   score
}

func (a *group) less(b *group) bool {
	if c := slices.Compare(a.counts, b.counts); c != 0 {
		return c < 0
	}
	return a.best.less(b.best)
}

// groupHeap is a min-heap of groups by stamp (container/heap.Interface).
type groupHeap []*group

func (h groupHeap) Len() int           { return len(h) }
func (h groupHeap) Less(i, j int) bool { return h[i].less(h[j]) }
func (h groupHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *groupHeap) Push(x any)        { *h = append(*h, x.(*group)) }
func (h *groupHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
