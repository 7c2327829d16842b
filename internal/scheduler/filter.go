package scheduler

import (
	"fmt"
	"strconv"

	"github.com/berth-dev/berth/internal/types"
)

// stage names one filter of the feasibility pipeline. Filters run in this
// order and a node is rejected by the first that fails, so each rejected node
// is counted exactly once when explaining why a task is pending.
type stage uint8

const (
	passed stage = iota
	stageNotReady
	stageDrained
	stageDriver
	stageConstraint
	stageCPU
	stageMemory
	stagePort
	stageMaxReplicas
)

// reject is a filter's verdict on one node. arg indexes the constraint or
// port that failed, so the hot path never builds strings.
type reject struct {
	stage stage
	arg   int
}

func (r reject) ok() bool { return r.stage == passed }

// staticReject runs the filters that depend only on the node and the spec,
// never on what has been placed: their verdict holds until the node changes.
func (v *serviceView) staticReject(n *types.Node) reject {
	switch {
	case n.Status != types.NodeReady:
		return reject{stage: stageNotReady}
	case n.Availability != types.AvailabilityActive:
		return reject{stage: stageDrained}
	case !n.HasDriver(v.driver):
		return reject{stage: stageDriver}
	}
	for i, c := range v.constraints {
		if !c.matches(n) {
			return reject{stage: stageConstraint, arg: i}
		}
	}
	return reject{}
}

// dynamicReject runs the filters that depend on what is already placed.
// Placing only adds, so a node failing one of these fails it until a task
// leaves it (the Cluster logs that, see candidates).
func (v *serviceView) dynamicReject(n *nodeInfo, svcTasks int32) reject {
	capa, used := n.node.Capacity, n.reserved
	if !fits(capa.NanoCPUs, used.NanoCPUs, v.reserve.NanoCPUs) {
		return reject{stage: stageCPU}
	}
	if !fits(capa.MemoryBytes, used.MemoryBytes, v.reserve.MemoryBytes) {
		return reject{stage: stageMemory}
	}
	for i, p := range v.ports {
		if p.binds(n.node) && n.ports.conflicts(p) {
			return reject{stage: stagePort, arg: i}
		}
	}
	if v.maxPerNode > 0 && svcTasks >= v.maxPerNode {
		return reject{stage: stageMaxReplicas}
	}
	return reject{}
}

// fits reports whether want more fits; a zero capacity means the node did
// not report that resource, and it is not limited.
func fits(capacity, used, want int64) bool {
	return capacity == 0 || want == 0 || used+want <= capacity
}

// check runs the whole pipeline on one node.
func (v *serviceView) check(n *nodeInfo, svcTasks int32) reject {
	if r := v.staticReject(n.node); !r.ok() {
		return r
	}
	return v.dynamicReject(n, svcTasks)
}

// describe names a rejection the way users read it in a pending reason.
func (v *serviceView) describe(r reject) string {
	switch r.stage {
	case stageNotReady:
		return "not ready"
	case stageDrained:
		return "drained"
	case stageDriver:
		return "no driver " + v.driver
	case stageConstraint:
		return "constraint " + v.constraints[r.arg].String()
	case stageCPU:
		return "insufficient cpu"
	case stageMemory:
		return "insufficient memory"
	case stagePort:
		return "port " + v.ports[r.arg].key.String() + " in use"
	case stageMaxReplicas:
		return "max replicas per node (" + strconv.Itoa(int(v.maxPerNode)) + ")"
	}
	return "available"
}

// pinnedReason explains why a task bound to one node cannot go there.
func pinnedReason(nodeID, why string) string {
	return fmt.Sprintf("node %s: %s", nodeID, why)
}
