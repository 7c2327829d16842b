package scheduler

import (
	"errors"
	"fmt"
	"slices"

	"github.com/berth-dev/berth/internal/types"
)

// Request asks for one task to be placed. A Task with NodeID set may go only
// to that node (global mode).
type Request struct {
	Task    *types.Task
	Service *types.Service
}

// Placement puts a task on a node.
type Placement struct {
	TaskID, NodeID string
}

// Failure says why a task could not be placed; Reason is meant for users
// (it becomes the task's PendingReason).
type Failure struct {
	TaskID string
	Reason string
}

// Plan is the outcome of one Place call, in request order.
type Plan struct {
	Placements []Placement
	Failures   []Failure
}

// ErrNodeNotFound is returned by Assign for a node the Cluster does not know.
var ErrNodeNotFound = errors.New("node not found")

// ErrInfeasible matches every *InfeasibleError.
var ErrInfeasible = errors.New("task does not fit on node")

// InfeasibleError says why a task cannot go to a node.
type InfeasibleError struct {
	TaskID, NodeID, Reason string
}

func (e *InfeasibleError) Error() string {
	return fmt.Sprintf("task %s cannot run on node %s: %s", e.TaskID, e.NodeID, e.Reason)
}

// Is makes errors.Is(err, ErrInfeasible) true.
func (e *InfeasibleError) Is(target error) bool { return target == ErrInfeasible }

// Place places the requests in order. Each placement is accounted before the
// next request is looked at, so later requests see the earlier ones and the
// plan never over-commits a node. The Cluster keeps the placements, so a
// second Place call continues from the first.
func (c *Cluster) Place(reqs []Request) Plan {
	c.calls++
	defer c.tidy()
	p := placer{c: c, reqs: reqs}
	var plan Plan
	for _, r := range reqs {
		nodeID, reason := p.place(r)
		if reason != "" {
			plan.Failures = append(plan.Failures, Failure{TaskID: taskID(r.Task), Reason: reason})
			continue
		}
		plan.Placements = append(plan.Placements, Placement{TaskID: r.Task.ID, NodeID: nodeID})
	}
	return plan
}

// Assign re-checks one placement against this (fresher) snapshot and
// accounts it if it still fits. The plan applier calls it for each placement
// of a plan before committing. The error is an *InfeasibleError (matching
// ErrInfeasible) or wraps ErrNodeNotFound.
func (c *Cluster) Assign(req Request, nodeID string) error {
	if why := invalidRequest(req); why != "" {
		return &InfeasibleError{TaskID: taskID(req.Task), NodeID: nodeID, Reason: why}
	}
	t := req.Task
	if t.NodeID != "" && t.NodeID != nodeID {
		return &InfeasibleError{TaskID: t.ID, NodeID: nodeID, Reason: "the task is bound to node " + t.NodeID}
	}
	idx, ok := c.byID[nodeID]
	if !ok {
		return fmt.Errorf("assign task %s to node %s: %w", t.ID, nodeID, ErrNodeNotFound)
	}
	if on, dup := c.holder(t.ID); dup {
		return &InfeasibleError{TaskID: t.ID, NodeID: nodeID, Reason: "the task already holds resources on node " + on}
	}
	v := newServiceView(req.Service)
	if v.invalid != "" {
		return &InfeasibleError{TaskID: t.ID, NodeID: nodeID, Reason: v.invalid}
	}
	svcID := types.ServiceID(t.App, t.Service)
	if r := v.check(c.nodes[idx], c.serviceTasks(svcID, idx)); !r.ok() {
		return &InfeasibleError{TaskID: t.ID, NodeID: nodeID, Reason: v.describe(r)}
	}
	c.place(idx, t.ID, svcID, &v.demand)
	return nil
}

// EligibleNodes returns, in ID order, the nodes passing the node-level
// filters for svc (ready, active, offering its driver, matching its
// constraints), ignoring resources and ports. Global-mode controllers create
// one task per eligible node. A service whose constraints do not parse has
// no eligible node; Place reports why.
func (c *Cluster) EligibleNodes(svc *types.Service) []string {
	nodes := make([]*types.Node, 0, c.live)
	for _, n := range c.nodes {
		if !n.dead {
			nodes = append(nodes, n.node)
		}
	}
	return EligibleNodes(nodes, svc)
}

// EligibleNodes is Cluster.EligibleNodes over a list of nodes, for a caller
// with no Cluster at hand: it builds none.
func EligibleNodes(nodes []*types.Node, svc *types.Service) []string {
	v := newServiceView(svc)
	if v.invalid != "" {
		return nil
	}
	var ids []string
	for _, n := range nodes {
		if v.staticReject(n).ok() {
			ids = append(ids, n.ID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func taskID(t *types.Task) string {
	if t == nil {
		return ""
	}
	return t.ID
}

func invalidRequest(r Request) string {
	switch {
	case r.Task == nil:
		return "the request has no task"
	case r.Service == nil:
		return "the request has no service spec"
	}
	return ""
}
