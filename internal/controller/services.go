package controller

import (
	"cmp"
	"maps"
	"slices"

	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/types"
)

// app reconciles every service of a live app, whose tasks are tasks, and
// shuts down the tasks of services the app no longer has.
func (p *pass) app(app *types.App, tasks []*types.Task) {
	byService := map[string][]*types.Task{}
	for _, t := range tasks {
		byService[t.Service] = append(byService[t.Service], t)
	}
	for name, ts := range byService {
		if app.Service(name) == nil {
			for _, t := range ts {
				p.shutdown(t)
			}
		}
	}
	for _, svc := range app.Services {
		ts := byService[svc.Name]
		if p.stopped(svc, ts) { // lifecycle.go
			p.removeRun(app, svc, ts) // runs.go
			continue
		}
		if svc.Mode == types.ModeGlobal {
			p.global(app, svc, ts)
		} else {
			p.replicated(app, svc, ts)
		}
	}
}

// replicated keeps slots 1..Replicas each with one wanted task and shuts
// down every task in a higher slot (scale down).
func (p *pass) replicated(app *types.App, svc *types.Service, tasks []*types.Task) {
	slots := groupBy(tasks, func(t *types.Task) int { return t.Slot })
	for slot, ts := range slots {
		if slot > svc.Replicas {
			for _, t := range ts {
				p.shutdown(t)
			}
		}
	}
	replicas := make([]rolloutSlot, 0, svc.Replicas)
	for slot := 1; slot <= svc.Replicas; slot++ {
		replicas = append(replicas, rolloutSlot{slot: slot, history: slots[slot]})
	}
	p.replicas(app, svc, replicas, nil)
}

// replicas reconciles a service's replicas, rolling a new version out as
// its deployment says (rollout.go), and judges them. verdicts may hold
// verdicts judged before.
func (p *pass) replicas(app *types.App, svc *types.Service, replicas []rolloutSlot, verdicts []slotVerdict) {
	roll := p.planRollout(app, svc, replicas)
	for i, r := range replicas {
		p.slot(app, svc, r.history, r.slot, r.node, func(cur *types.Task) bool { return roll.may(i, cur) }, roll.startFirst)
		verdicts = append(verdicts, judgeSlot(svc, r.history, p.now))
	}
	if restarting(svc, replicas) { // lifecycle.go
		return
	}
	p.judged(app, svc, verdicts)
}

// global keeps one wanted task on each eligible node and shuts down tasks on
// nodes that are no longer eligible.
func (p *pass) global(app *types.App, svc *types.Service, tasks []*types.Task) {
	eligible := map[string]bool{}
	for _, id := range scheduler.EligibleNodes(p.view.Nodes(), svc) {
		eligible[id] = true
	}
	byNode := groupBy(tasks, func(t *types.Task) string { return t.NodeID })
	for node, ts := range byNode {
		if !eligible[node] {
			for _, t := range ts {
				p.shutdown(t)
			}
		}
	}
	nodes := slices.Sorted(maps.Keys(eligible)) // verdicts in node order
	verdicts := make([]slotVerdict, 0, len(nodes)+1)
	if len(nodes) == 0 {
		// No node qualifies yet (an agent may still be registering): a
		// global service with nowhere to run is not up.
		verdicts = append(verdicts, slotVerdict{state: types.ServiceConverging})
	}
	replicas := make([]rolloutSlot, 0, len(nodes))
	for _, node := range nodes {
		replicas = append(replicas, rolloutSlot{node: node, history: byNode[node]})
	}
	p.replicas(app, svc, replicas, verdicts)
}

// slot reconciles one replica: a slot number, or a node in global mode.
// history holds every task the slot still has, in any state. may says
// whether a task of an older version may be replaced now, and startFirst
// whether its replacement starts before it stops (rollout.go).
func (p *pass) slot(app *types.App, svc *types.Service, history []*types.Task, slot int, nodeID string, may func(*types.Task) bool, startFirst bool) {
	cur := current(history)
	if cur != nil {
		cur = p.handover(svc, history, cur) // drain.go
	}
	switch {
	case cur == nil:
		p.create(app.Name, svc, slot, nodeID, 0)
	case p.restarted(app, svc, cur, slot, nodeID): // lifecycle.go
	case p.drained(cur):
		// Its node is being drained: start a replacement elsewhere (drain.go).
		p.drain(app, svc, cur, slot, nodeID)
	case cur.ServiceVersion != svc.Version:
		// Spec changed: replace it when the rollout says so.
		if !may(cur) {
			return
		}
		if !startFirst || cur.State.Terminal() || cur.Health == types.HealthUnhealthy {
			p.shutdown(cur)
		}
		p.create(app.Name, svc, slot, nodeID, 0)
	case cur.State.Terminal() || cur.Health == types.HealthUnhealthy:
		d := decideRestart(svc.RestartPolicy, cur, history, p.now)
		switch {
		case d.now:
			p.shutdown(cur)
			p.create(app.Name, svc, slot, nodeID, cur.Attempt+1)
		case !d.at.IsZero():
			p.wakeAt(d.at)
		}
	}
}

// drained reports whether a task still runs (or is about to) on a node an
// operator is draining.
func (p *pass) drained(t *types.Task) bool {
	if !t.HoldsResources() {
		return false
	}
	return p.draining(t.NodeID)
}

// draining reports whether a node is being drained, remembered for the
// pass: asked for every replica on every pass, a store lookup each was a
// third of the pass's CPU with 10,000 replicas on 100 nodes.
func (p *pass) draining(nodeID string) bool {
	d, ok := p.drainingNodes[nodeID]
	if !ok {
		n := p.view.Node(nodeID)
		d = n != nil && n.Availability == types.AvailabilityDrain
		p.drainingNodes[nodeID] = d
	}
	return d
}

// current is the slot's newest task that is still wanted (desired running),
// or nil.
func current(history []*types.Task) *types.Task {
	var cur *types.Task
	for _, t := range history {
		if t.DesiredState != types.DesiredRunning {
			continue
		}
		if cur == nil || t.CreateIndex > cur.CreateIndex {
			cur = t
		}
	}
	return cur
}

func groupBy[K comparable](tasks []*types.Task, key func(*types.Task) K) map[K][]*types.Task {
	m := make(map[K][]*types.Task, len(tasks))
	for _, t := range tasks {
		k := key(t)
		m[k] = append(m[k], t)
	}
	// slices.SortFunc, not sort.Slice, which allocates for every group:
	// a pass over a service groups every one of its slots.
	for _, ts := range m {
		if len(ts) > 1 {
			slices.SortFunc(ts, byCreation)
		}
	}
	return m
}

// byCreation orders tasks oldest first.
func byCreation(a, b *types.Task) int { return cmp.Compare(a.CreateIndex, b.CreateIndex) }
