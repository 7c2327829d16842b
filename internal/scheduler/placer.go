package scheduler

import (
	"github.com/berth-dev/berth/internal/types"
)

// candKey identifies a candidates cache: tasks of one service ID may come
// with different specs in one call (an update in flight), and each spec
// filters nodes its own way.
type candKey struct {
	svcID string
	svc   *types.Service
}

// placer holds what one Place call caches: parsed specs and one candidates
// structure per service spec, built on the first request that needs it.
type placer struct {
	c     *Cluster
	views map[*types.Service]*serviceView
	cands map[candKey]*candidates
	// bySvc lists every candidates cache of a service ID, so a placement is
	// counted by all of them.
	bySvc map[string][]*candidates
}

// place decides one request and accounts it; it returns the node, or the
// reason the task stays pending.
func (p *placer) place(r Request) (string, string) {
	if why := invalidRequest(r); why != "" {
		return "", why
	}
	t := r.Task
	if on, dup := p.c.placed[t.ID]; dup {
		return "", "the task already holds resources on node " + on
	}
	v := p.view(r.Service)
	if v.invalid != "" {
		return "", v.invalid
	}
	svcID := types.ServiceID(t.App, t.Service)
	if t.NodeID != "" {
		return p.placePinned(t, v, svcID)
	}
	k := p.candidates(svcID, r.Service, v)
	idx, ok := k.next()
	if !ok {
		return "", k.explain()
	}
	p.commit(idx, t.ID, svcID, v)
	return p.c.nodes[idx].node.ID, ""
}

// placePinned places a task that may only go to its own node.
func (p *placer) placePinned(t *types.Task, v *serviceView, svcID string) (string, string) {
	idx, ok := p.c.byID[t.NodeID]
	if !ok {
		return "", pinnedReason(t.NodeID, "not in the cluster")
	}
	if r := v.check(p.c.nodes[idx], p.c.serviceTasks(svcID, idx)); !r.ok() {
		return "", pinnedReason(t.NodeID, v.describe(r))
	}
	p.commit(idx, t.ID, svcID, v)
	return t.NodeID, ""
}

func (p *placer) commit(idx int32, taskID, svcID string, v *serviceView) {
	p.c.account(idx, taskID, svcID, v.demand)
	for _, k := range p.bySvc[svcID] {
		k.placed(idx)
	}
}

func (p *placer) view(svc *types.Service) *serviceView {
	v := p.views[svc]
	if v == nil {
		v = newServiceView(svc)
		p.views[svc] = v
	}
	return v
}

func (p *placer) candidates(svcID string, svc *types.Service, v *serviceView) *candidates {
	key := candKey{svcID, svc}
	k := p.cands[key]
	if k == nil {
		k = newCandidates(p.c, v, svcID)
		p.cands[key] = k
		if p.bySvc == nil {
			p.bySvc = map[string][]*candidates{}
		}
		p.bySvc[svcID] = append(p.bySvc[svcID], k)
	}
	return k
}
