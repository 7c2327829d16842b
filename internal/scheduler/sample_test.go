package scheduler

import (
	"fmt"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// bigCluster is n nodes over 10 zones, already running a skewed load.
func bigCluster(n int) ([]*types.Node, []*types.Task, map[string]*types.Service) {
	bg := service("bg", reserve(cpu/5, gib/4))
	var nodes []*types.Node
	for i := range n {
		nodes = append(nodes, node(fmt.Sprintf("n%05d", i), labels("zone", fmt.Sprintf("z%d", i%10)), capacity(32*cpu, 128*gib)))
	}
	var tasks []*types.Task
	for i := range 2 * n {
		tasks = append(tasks, running(fmt.Sprintf("bg%d", i), bg, nodes[(i*i)%n].ID))
	}
	return nodes, tasks, servicesOf(bg)
}

// spreadQuality returns, for the worst service of the plan, the largest
// minus the smallest count of its tasks over the nodes and, of the services
// spread over zones, over the zones; and the most tasks any node runs.
func spreadQuality(nodes []*types.Node, existing []*types.Task, reqs []Request, plan Plan) (perNode, perZone, busiest int) {
	zone := map[string]string{}
	for _, n := range nodes {
		zone[n.ID] = n.Labels["zone"]
	}
	svcOf := map[string]string{}
	spreads := map[string]bool{}
	for _, r := range reqs {
		svcOf[r.Task.ID] = r.Task.Service
		spreads[r.Task.Service] = len(r.Service.Placement.Preferences) > 0
	}
	load := map[string]int{}
	for _, t := range existing {
		load[t.NodeID]++
	}
	nodeCount, zoneCount := map[string]map[string]int{}, map[string]map[string]int{}
	for _, p := range plan.Placements {
		s := svcOf[p.TaskID]
		if nodeCount[s] == nil {
			nodeCount[s], zoneCount[s] = map[string]int{}, map[string]int{}
		}
		nodeCount[s][p.NodeID]++
		zoneCount[s][zone[p.NodeID]]++
		load[p.NodeID]++
		busiest = max(busiest, load[p.NodeID])
	}
	spreadOver := func(counts map[string]int, keys []string) int {
		hi, lo := 0, -1
		for _, k := range keys {
			hi = max(hi, counts[k])
			if lo < 0 || counts[k] < lo {
				lo = counts[k]
			}
		}
		return hi - lo
	}
	var nodeIDs []string
	for _, n := range nodes {
		nodeIDs = append(nodeIDs, n.ID)
	}
	zones := []string{"z0", "z1", "z2", "z3", "z4", "z5", "z6", "z7", "z8", "z9"}
	for s := range nodeCount {
		perNode = max(perNode, spreadOver(nodeCount[s], nodeIDs))
		if spreads[s] {
			perZone = max(perZone, spreadOver(zoneCount[s], zones))
		}
	}
	return perNode, perZone, busiest
}

// TestSamplingKeepsSpread places the same services on a 5,000-node cluster
// scoring a sample of the nodes and scoring all of them, in one call and
// one task per call, and checks that sampling spreads as evenly: per node
// and per zone.
func TestSamplingKeepsSpread(t *testing.T) {
	nodes, existing, services := bigCluster(5000)
	var reqs []Request
	for i, n := range []int{700, 3000, 6000} {
		svc := service(fmt.Sprintf("s%d", i), reserve(cpu/10, gib/16))
		if i != 1 {
			spread("node.labels.zone")(svc)
		}
		reqs = append(reqs, requests(svc, n)...)
	}
	place := func(all, oneByOne bool) Plan {
		defer func(old int) { scoreAll = old }(scoreAll)
		if all {
			scoreAll = len(nodes)
		}
		c := NewCluster(nodes, existing, services)
		if !oneByOne {
			return c.Place(reqs)
		}
		var plan Plan
		for _, r := range reqs {
			p := c.Place([]Request{r})
			plan.Placements = append(plan.Placements, p.Placements...)
			plan.Failures = append(plan.Failures, p.Failures...)
		}
		return plan
	}
	for _, oneByOne := range []bool{false, true} {
		full, sampled := place(true, oneByOne), place(false, oneByOne)
		if len(full.Failures)+len(sampled.Failures) > 0 {
			t.Fatalf("failures: all nodes scored %d, sampled %d", len(full.Failures), len(sampled.Failures))
		}
		fullNode, fullZone, fullBusiest := spreadQuality(nodes, existing, reqs, full)
		node, zone, busiest := spreadQuality(nodes, existing, reqs, sampled)
		t.Logf("one task per call %v: max-min tasks of a service per node %d (all nodes scored: %d), per zone %d (%d); busiest node %d tasks (%d)",
			oneByOne, node, fullNode, zone, fullZone, busiest, fullBusiest)
		if node > fullNode || zone > fullZone {
			t.Errorf("one task per call %v: sampling spread worse: per node %d > %d or per zone %d > %d", oneByOne, node, fullNode, zone, fullZone)
		}
	}
}

// TestSamplingFindsTheOneNode checks that a sample never hides the only
// node that fits, and that "nothing fits" counts every node.
func TestSamplingFindsTheOneNode(t *testing.T) {
	nodes, existing, services := bigCluster(5000)
	c := NewCluster(nodes, existing, services)
	only := service("only", constraints("node.hostname==host-n03217"))
	plan := c.Place(requests(only, 1))
	if len(plan.Placements) != 1 || plan.Placements[0].NodeID != "n03217" {
		t.Fatalf("plan = %+v, want the task on n03217", plan)
	}
	huge := service("huge", reserve(64*cpu, 0))
	plan = c.Place(requests(huge, 1))
	if len(plan.Failures) != 1 || !strings.HasPrefix(plan.Failures[0].Reason, "0/5000 nodes available: 5000 insufficient cpu") {
		t.Fatalf("plan = %+v, want every node counted as short of cpu", plan)
	}
}
