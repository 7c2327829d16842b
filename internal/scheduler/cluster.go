package scheduler

import (
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/types"
)

// Cluster is a scheduling snapshot: the nodes, and the resources, host ports
// and task counts already used on each. Place and Assign add to it; nothing
// is ever taken away, so a Cluster is built fresh for every scheduling pass.
// A Cluster is not safe for concurrent use.
type Cluster struct {
	nodes []*nodeInfo      // sorted by node ID: a node's index is its rank in ID order
	byID  map[string]int32 // node ID -> index
	// usage counts each service's tasks per node index, by service ID.
	usage map[string]map[int32]int32
	// placed maps the ID of every task holding resources to its node ID, so
	// a task is never counted twice.
	placed map[string]string
	// gen is bumped on every accounted task, so cached explanations of why a
	// service cannot be placed know when they have gone stale.
	gen uint64
}

// nodeInfo is one node and what is already used on it.
type nodeInfo struct {
	node     *types.Node
	reserved types.ResourceAmounts
	tasks    int32
	ports    portSet
}

// demand is what one task of a service takes from its node.
type demand struct {
	reserve types.ResourceAmounts
	ports   []hostPort
}

func demandOf(svc *types.Service) demand {
	if svc == nil {
		return demand{}
	}
	return demand{reserve: svc.Resources.Reservations, ports: publishedPorts(svc.Ports)}
}

// NewCluster builds a snapshot from the nodes and the tasks that hold
// resources on them. Tasks that do not hold resources (types.Task.HoldsResources)
// are skipped, as are tasks on nodes not in the list. services is
// keyed by types.ServiceID(app, name) and gives each task its reservations
// and published ports; a task whose service is missing still counts as a
// task on its node but reserves nothing.
func NewCluster(nodes []*types.Node, tasks []*types.Task, services map[string]*types.Service) *Cluster {
	c := &Cluster{
		byID:   make(map[string]int32, len(nodes)),
		usage:  make(map[string]map[int32]int32),
		placed: make(map[string]string),
	}
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b *types.Node) int { return strings.Compare(a.ID, b.ID) })
	sorted = slices.CompactFunc(sorted, func(a, b *types.Node) bool { return a.ID == b.ID })
	for i, n := range sorted {
		c.nodes = append(c.nodes, &nodeInfo{node: n, ports: portSet{}})
		c.byID[n.ID] = int32(i)
	}
	for _, t := range tasks {
		if !t.HoldsResources() {
			continue
		}
		idx, ok := c.byID[t.NodeID]
		if !ok {
			continue
		}
		svcID := types.ServiceID(t.App, t.Service)
		c.accountExisting(idx, t, svcID, demandOf(services[svcID]))
	}
	return c
}

// account records one task of service svcID on node idx.
func (c *Cluster) account(idx int32, taskID, svcID string, d demand) {
	if _, dup := c.placed[taskID]; dup {
		return
	}
	n := c.nodes[idx]
	n.reserved = n.reserved.Add(d.reserve)
	n.tasks++
	for _, p := range d.ports {
		if p.binds(n.node) {
			n.ports.add(p)
		}
	}
	perNode := c.usage[svcID]
	if perNode == nil {
		perNode = make(map[int32]int32)
		c.usage[svcID] = perNode
	}
	perNode[idx]++
	c.placed[taskID] = n.node.ID
	c.gen++
}

// serviceTasks returns how many tasks of service svcID node idx runs.
func (c *Cluster) serviceTasks(svcID string, idx int32) int32 {
	return c.usage[svcID][idx]
}
