package scheduler

import (
	"fmt"
	mathrand "math/rand"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"testing/quick"

	"github.com/berth-dev/berth/internal/types"
)

// placeNaive is the reference the heaps are checked against: for every
// request it runs every node through the whole pipeline and computes every
// score from scratch, spread groups included.
func placeNaive(c *Cluster, reqs []Request) Plan {
	var plan Plan
	for _, r := range reqs {
		t := r.Task
		fail := func(reason string) { plan.Failures = append(plan.Failures, Failure{t.ID, reason}) }
		if on, dup := c.holder(t.ID); dup {
			fail("the task already holds resources on node " + on)
			continue
		}
		v := newServiceView(r.Service)
		if v.invalid != "" {
			fail(v.invalid)
			continue
		}
		svcID := types.ServiceID(t.App, t.Service)
		best, why := naiveBest(c, v, svcID, t.NodeID)
		if best < 0 {
			fail(why)
			continue
		}
		c.place(best, t.ID, svcID, &v.demand)
		plan.Placements = append(plan.Placements, Placement{t.ID, c.nodes[best].node.ID})
	}
	return plan
}

// naiveBest returns the index of the best feasible node (only pinned when
// set), or -1 and why there is none.
func naiveBest(c *Cluster, v *serviceView, svcID, pinned string) (int32, string) {
	best, bestKey := int32(-1), []int64(nil)
	for i, n := range c.nodes {
		idx := int32(i)
		if pinned != "" && n.node.ID != pinned {
			continue
		}
		if r := v.check(n, c.serviceTasks(svcID, idx)); !r.ok() {
			if pinned != "" {
				return -1, pinnedReason(pinned, v.describe(r))
			}
			continue
		}
		if key := naiveKey(c, v, svcID, idx); best < 0 || slices.Compare(key, bestKey) < 0 {
			best, bestKey = idx, key
		}
	}
	switch {
	case best >= 0:
		return best, ""
	case pinned != "":
		return -1, pinnedReason(pinned, "not in the cluster")
	}
	return -1, c.explain(v, svcID)
}

func naiveKey(c *Cluster, v *serviceView, svcID string, idx int32) []int64 {
	var key []int64
	self := c.nodes[idx].node
	for k := range v.prefs {
		var sum int64
		for j, m := range c.nodes {
			if sameLabels(self, m.node, v.prefs[:k+1]) {
				sum += int64(c.serviceTasks(svcID, int32(j)))
			}
		}
		key = append(key, sum)
	}
	n := c.nodes[idx]
	return append(key, int64(c.serviceTasks(svcID, idx)), int64(n.tasks), n.reserved.MemoryBytes, int64(idx))
}

func sameLabels(a, b *types.Node, keys []string) bool {
	for _, k := range keys {
		if a.Labels[k] != b.Labels[k] {
			return false
		}
	}
	return true
}

// scenario is a random cluster, its running tasks and a sequence of
// requests, split into two Place calls at split.
type scenario struct {
	nodes    []*types.Node
	existing []*types.Task
	services map[string]*types.Service
	reqs     []Request
	split    int
}

func pick[T any](rng *rand.Rand, xs ...T) T { return xs[rng.IntN(len(xs))] }

func randomNode(rng *rand.Rand, id string) *types.Node {
	n := node(id, labels())
	if rng.IntN(10) == 0 {
		down(n)
	}
	if rng.IntN(10) == 0 {
		drained(n)
	}
	if rng.IntN(3) == 0 {
		dockerOnly(n)
	}
	if rng.IntN(5) == 0 {
		manager(n)
	}
	if z := pick(rng, "a", "b", "c", ""); z != "" {
		n.Labels["zone"] = z
	}
	if r := pick(rng, "r1", "r2", ""); r != "" {
		n.Labels["rack"] = r
	}
	n.Capacity.NanoCPUs = pick(rng, 0, 2*cpu, 4*cpu, 8*cpu)
	n.Capacity.MemoryBytes = pick(rng, 0, 2*gib, 4*gib, 8*gib)
	return n
}

func randomService(rng *rand.Rand, name string) *types.Service {
	s := service(name,
		reserve(pick(rng, 0, cpu/2, cpu, 2*cpu), pick(rng, 0, gib/2, gib, 2*gib)),
		driver(pick(rng, "", "docker", "exec")),
		maxPerNode(pick(rng, 0, 0, 1, 2, 3)),
		spread(pick(rng, []string{}, []string{}, []string{"node.labels.zone"},
			[]string{"node.labels.zone", "node.labels.rack"}, []string{"node.labels.rack"})...),
	)
	for range rng.IntN(3) {
		publish(pick[uint16](rng, 8080, 8081), pick(rng, "tcp", "udp"), pick(rng, "", "127.0.0.1", "127.0.0.2"))(s)
	}
	for range rng.IntN(3) {
		s.Placement.Constraints = append(s.Placement.Constraints, pick(rng,
			"node.labels.zone==a", "node.labels.zone!=b", "node.role!=manager",
			"node.hostname!=host-n01", "node.labels.rack==r2", "node.id!=n03"))
	}
	if rng.IntN(40) == 0 {
		s.Placement.Constraints = append(s.Placement.Constraints, "zone=a")
	}
	return s
}

func randomScenario(rng *rand.Rand) scenario {
	var sc scenario
	for i := range 1 + rng.IntN(12) {
		sc.nodes = append(sc.nodes, randomNode(rng, fmt.Sprintf("n%02d", i+1)))
	}
	rng.Shuffle(len(sc.nodes), func(i, j int) { sc.nodes[i], sc.nodes[j] = sc.nodes[j], sc.nodes[i] })
	// Each service has one or two specs: an update in flight sends tasks of
	// both in one call.
	var specs [][]*types.Service
	sc.services = map[string]*types.Service{}
	for i := range 1 + rng.IntN(4) {
		name := fmt.Sprintf("s%d", i)
		v := []*types.Service{randomService(rng, name)}
		if rng.IntN(4) == 0 {
			v = append(v, randomService(rng, name))
		}
		specs = append(specs, v)
		sc.services[types.ServiceID("app", name)] = v[0]
	}
	for i := range rng.IntN(12) {
		s := pick(rng, specs...)[0]
		tk := running(fmt.Sprintf("old%d", i), s, pick(rng, sc.nodes...).ID)
		tk.State = pick(rng, types.TaskRunning, types.TaskRunning, types.TaskAssigned, types.TaskPending, types.TaskFailed)
		sc.existing = append(sc.existing, tk)
	}
	for i := range 1 + rng.IntN(40) {
		spec := pick(rng, pick(rng, specs...)...)
		r := requests(spec, 1)[0]
		r.Task.ID = fmt.Sprintf("t%d", i)
		if rng.IntN(8) == 0 {
			r.Task.NodeID = pick(rng, sc.nodes...).ID
			if rng.IntN(4) == 0 {
				r.Task.NodeID = "missing"
			}
		}
		sc.reqs = append(sc.reqs, r)
	}
	sc.split = rng.IntN(len(sc.reqs) + 1)
	return sc
}

func (sc scenario) run(place func(*Cluster, []Request) Plan) Plan {
	c := NewCluster(sc.nodes, sc.existing, sc.services)
	a, b := place(c, sc.reqs[:sc.split]), place(c, sc.reqs[sc.split:])
	return Plan{Placements: append(a.Placements, b.Placements...), Failures: append(a.Failures, b.Failures...)}
}

// TestPlaceMatchesNaive checks that the heap-based Place makes exactly the
// choices and gives exactly the reasons of a full scan per request.
func TestPlaceMatchesNaive(t *testing.T) {
	fast := func(c *Cluster, reqs []Request) Plan { return c.Place(reqs) }
	check := func(seed uint64) bool {
		sc := randomScenario(rand.New(rand.NewPCG(seed, 7)))
		got, want := sc.run(fast), sc.run(placeNaive)
		if !reflect.DeepEqual(got, want) {
			t.Logf("seed %d:\n Place %+v\n naive %+v", seed, got, want)
			return false
		}
		return true
	}
	if err := quick.Check(check, &quick.Config{MaxCount: 3000, Rand: mathrand.New(mathrand.NewSource(1))}); err != nil {
		t.Fatal(err)
	}
}

// TestPlacementsPassAssign replays every plan through Assign on a fresh
// snapshot: Place never proposes what the plan applier would refuse.
func TestPlacementsPassAssign(t *testing.T) {
	check := func(seed uint64) bool {
		sc := randomScenario(rand.New(rand.NewPCG(seed, 11)))
		plan := sc.run(func(c *Cluster, reqs []Request) Plan { return c.Place(reqs) })
		byTask := map[string]Request{}
		for _, r := range sc.reqs {
			byTask[r.Task.ID] = r
		}
		c := NewCluster(sc.nodes, sc.existing, sc.services)
		for _, p := range plan.Placements {
			if err := c.Assign(byTask[p.TaskID], p.NodeID); err != nil {
				t.Logf("seed %d: %v", seed, err)
				return false
			}
		}
		return true
	}
	if err := quick.Check(check, &quick.Config{MaxCount: 1000, Rand: mathrand.New(mathrand.NewSource(2))}); err != nil {
		t.Fatal(err)
	}
}
