package scheduler

import (
	"github.com/berth-dev/berth/internal/types"
)

// placer holds what one Place call caches: the parsed specs. The candidates
// of each spec live in the Cluster, across calls.
type placer struct {
	c     *Cluster
	reqs  []Request
	views map[*types.Service]*serviceView
	// wanted counts the call's requests per spec, for the size of a new
	// candidates' first sample; counted on first need.
	wanted map[*types.Service]int
	// last is the previous request's spec, service ID and candidates:
	// plans come in runs of one service's tasks, and this spares the runs
	// a service ID and two map lookups per task.
	last struct {
		svc       *types.Service
		app, name string
		svcID     string
		k         *candidates
	}
}

// serviceID returns types.ServiceID of the task, and the cached candidates
// of its spec (nil if none yet).
func (p *placer) serviceID(t *types.Task, svc *types.Service) (string, *candidates) {
	l := &p.last
	if l.svc == svc && l.app == t.App && l.name == t.Service {
		return l.svcID, l.k
	}
	l.svc, l.app, l.name, l.k = svc, t.App, t.Service, nil
	l.svcID = types.ServiceID(t.App, t.Service)
	if k := p.c.cands[candKey{l.svcID, svc}]; k != nil {
		l.k = k
	}
	return l.svcID, l.k
}

// place decides one request and accounts it; it returns the node, or the
// reason the task stays pending.
func (p *placer) place(r Request) (string, string) {
	if why := invalidRequest(r); why != "" {
		return "", why
	}
	t := r.Task
	if on, dup := p.c.holder(t.ID); dup {
		return "", "the task already holds resources on node " + on
	}
	svcID, k := p.serviceID(t, r.Service)
	var v *serviceView
	if k != nil {
		v = k.v
	} else if v = p.view(r.Service); v.invalid != "" {
		return "", v.invalid
	}
	if t.NodeID != "" {
		return p.placePinned(t, v, svcID)
	}
	if k == nil {
		k = p.c.candidatesFor(svcID, r.Service, v, p.want(r.Service))
		p.last.k = k
	}
	k.lastUse = p.c.calls
	idx, ok := k.next()
	if !ok {
		return "", k.explain()
	}
	p.c.placeFor(k, idx, t.ID, &v.demand)
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
	p.c.place(idx, t.ID, svcID, &v.demand)
	return t.NodeID, ""
}

func (p *placer) view(svc *types.Service) *serviceView {
	v := p.views[svc]
	if v == nil {
		v = newServiceView(svc)
		if p.views == nil {
			p.views = map[*types.Service]*serviceView{}
		}
		p.views[svc] = v
	}
	return v
}

// want returns how many of the call's requests have spec svc.
func (p *placer) want(svc *types.Service) int {
	if p.c.live <= scoreAll {
		return 0 // every node is scored anyway
	}
	if p.wanted == nil {
		p.wanted = map[*types.Service]int{}
		for _, r := range p.reqs {
			p.wanted[r.Service]++
		}
	}
	return p.wanted[svc]
}
