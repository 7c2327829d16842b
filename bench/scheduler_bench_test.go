package bench

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/types"
)

// The scheduler benchmarks place 10 services of 1,000 replicas each on a
// cluster of 10,000 (or 100,000) nodes already running two tasks per node
// on average, skewed, and report placements per second of Place alone
// (building the view is timed separately by BenchmarkNewCluster10kNodes).
// Besides placements/s (wall clock) they report placements per CPU-second
// of the process (cpu-placements/s): this machine is shared, and a
// benchmark waiting for a core is not the scheduler being slow. They also
// report the spread the plan left, for the worst service: the largest
// minus the smallest count of its tasks over the nodes (node-maxmin) and,
// when it spreads over zones, over the zones (zone-maxmin).
const (
	benchServices = 10
	benchReplicas = 1_000
	benchZones    = 10
)

func BenchmarkPlace10kNodes(b *testing.B) { benchPlace(b, 10_000, nil) }

func BenchmarkPlace10kNodesSpread(b *testing.B) {
	benchPlace(b, 10_000, []string{"node.labels.zone"})
}

func BenchmarkPlace100kNodesSpread(b *testing.B) {
	benchPlace(b, 100_000, []string{"node.labels.zone"})
}

// BenchmarkPlaceOne10kNodes places a single task per Place call on a view
// kept across calls: how scale-ups arrive.
func BenchmarkPlaceOne10kNodes(b *testing.B) {
	nodes, tasks, services := benchCluster(10_000)
	req := benchRequests(nil)[0]
	c := scheduler.NewCluster(nodes, tasks, services)
	cpu := startCPU()
	for i := 0; b.Loop(); i++ {
		r := req
		t := *req.Task
		t.ID = fmt.Sprintf("one-%d", i)
		r.Task = &t
		if plan := c.Place([]scheduler.Request{r}); len(plan.Placements) != 1 {
			b.Fatalf("plan = %+v, want one placement", plan)
		}
	}
	b.ReportMetric(float64(cpu.elapsed().Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkRestartOne10kNodes is how a restart arrives at a kept view: a
// running task ends (the view forgets it) and its replacement is placed.
func BenchmarkRestartOne10kNodes(b *testing.B) {
	nodes, tasks, services := benchCluster(10_000)
	reqs := benchRequests(nil)[:benchReplicas]
	c := scheduler.NewCluster(nodes, tasks, services)
	plan := c.Place(reqs)
	if len(plan.Failures) > 0 {
		b.Fatalf("%d failures", len(plan.Failures))
	}
	ids := make([]string, 0, len(plan.Placements))
	for _, p := range plan.Placements {
		ids = append(ids, p.TaskID)
	}
	cpu := startCPU()
	for i := 0; b.Loop(); i++ {
		j := i % len(ids)
		c.RemoveTask(ids[j])
		r := reqs[j]
		t := *r.Task
		t.ID = fmt.Sprintf("restart-%d", i)
		r.Task = &t
		if plan := c.Place([]scheduler.Request{r}); len(plan.Placements) != 1 {
			b.Fatalf("plan = %+v, want one placement", plan)
		}
		ids[j] = t.ID
	}
	b.ReportMetric(float64(cpu.elapsed().Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func BenchmarkNewCluster10kNodes(b *testing.B) {
	nodes, tasks, services := benchCluster(10_000)
	for b.Loop() {
		scheduler.NewCluster(nodes, tasks, services)
	}
}

func benchPlace(b *testing.B, size int, prefs []string) {
	nodes, tasks, services := benchCluster(size)
	reqs := benchRequests(prefs)
	placed := 0
	var cpu time.Duration
	var plan scheduler.Plan
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		c := scheduler.NewCluster(nodes, tasks, services)
		b.StartTimer()
		start := startCPU()
		plan = c.Place(reqs)
		cpu += start.elapsed()
		if len(plan.Failures) > 0 {
			b.Fatalf("%d failures, first: %+v", len(plan.Failures), plan.Failures[0])
		}
		placed += len(plan.Placements)
	}
	b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "placements/s")
	b.ReportMetric(float64(placed)/cpu.Seconds(), "cpu-placements/s")
	nodeSpread, zoneSpread := spreadOf(nodes, reqs, plan)
	b.ReportMetric(float64(nodeSpread), "node-maxmin")
	if len(prefs) > 0 {
		b.ReportMetric(float64(zoneSpread), "zone-maxmin")
	}
}

// spreadOf measures a plan's spread, for the worst service: the largest
// minus the smallest count of its tasks over the nodes, and over the zones.
func spreadOf(nodes []*types.Node, reqs []scheduler.Request, plan scheduler.Plan) (int, int) {
	zoneOf := map[string]string{}
	for _, n := range nodes {
		zoneOf[n.ID] = n.Labels["zone"]
	}
	svcOf := map[string]string{}
	for _, r := range reqs {
		svcOf[r.Task.ID] = r.Task.Service
	}
	perNode := map[string]map[string]int{} // service -> node -> tasks
	perZone := map[string]map[string]int{} // service -> zone -> tasks
	for _, p := range plan.Placements {
		s := svcOf[p.TaskID]
		if perNode[s] == nil {
			perNode[s], perZone[s] = map[string]int{}, map[string]int{}
		}
		perNode[s][p.NodeID]++
		perZone[s][zoneOf[p.NodeID]]++
	}
	worstNode, worstZone := 0, 0
	for s := range perNode {
		maxNode, minNode := 0, 0
		for _, n := range perNode[s] {
			maxNode = max(maxNode, n)
		}
		if len(perNode[s]) == len(nodes) {
			minNode = maxNode
			for _, n := range perNode[s] {
				minNode = min(minNode, n)
			}
		}
		worstNode = max(worstNode, maxNode-minNode)
		maxZone, minZone := 0, -1
		for z := range benchZones {
			n := perZone[s][fmt.Sprintf("z%d", z)]
			maxZone = max(maxZone, n)
			if minZone < 0 || n < minZone {
				minZone = n
			}
		}
		worstZone = max(worstZone, maxZone-minZone)
	}
	return worstNode, worstZone
}

// benchCluster builds the nodes (32 cores, 128 GiB, spread over zones) and
// the tasks already running on them, of one background service.
func benchCluster(size int) ([]*types.Node, []*types.Task, map[string]*types.Service) {
	bg := &types.Service{Name: "background", Resources: types.Resources{
		Reservations: types.ResourceAmounts{NanoCPUs: 2e8, MemoryBytes: 256 << 20}}}
	nodes := make([]*types.Node, size)
	for i := range nodes {
		nodes[i] = &types.Node{
			ID:           fmt.Sprintf("node-%06d", i),
			Name:         fmt.Sprintf("host-%06d", i),
			Role:         types.RoleWorker,
			Labels:       map[string]string{"zone": fmt.Sprintf("z%d", i%benchZones)},
			Capacity:     types.ResourceAmounts{NanoCPUs: 32e9, MemoryBytes: 128 << 30},
			Drivers:      []string{types.DriverDocker},
			Status:       types.NodeReady,
			Availability: types.AvailabilityActive,
		}
	}
	tasks := make([]*types.Task, 2*size)
	for i := range tasks {
		// A skewed spread, so nodes differ in load.
		n := nodes[(i*i)%size]
		tasks[i] = &types.Task{ID: fmt.Sprintf("bg-%d", i), App: "bench", Service: bg.Name,
			NodeID: n.ID, State: types.TaskRunning, DesiredState: types.DesiredRunning}
	}
	return nodes, tasks, map[string]*types.Service{types.ServiceID("bench", bg.Name): bg}
}

func benchRequests(prefs []string) []scheduler.Request {
	var reqs []scheduler.Request
	for s := range benchServices {
		svc := &types.Service{
			Name:      fmt.Sprintf("svc%d", s),
			Mode:      types.ModeReplicated,
			Replicas:  benchReplicas,
			Resources: types.Resources{Reservations: types.ResourceAmounts{NanoCPUs: 1e8, MemoryBytes: 64 << 20}},
			Placement: types.Placement{Preferences: prefs},
		}
		for r := range benchReplicas {
			t := &types.Task{ID: fmt.Sprintf("%s-%d", svc.Name, r+1), App: "bench", Service: svc.Name,
				Slot: r + 1, State: types.TaskPending, DesiredState: types.DesiredRunning}
			reqs = append(reqs, scheduler.Request{Task: t, Service: svc})
		}
	}
	return reqs
}

// cpuClock reads the CPU time (user and system) the process has used.
type cpuClock time.Duration

func startCPU() cpuClock { return cpuClock(processCPU()) }

func (c cpuClock) elapsed() time.Duration { return processCPU() - time.Duration(c) }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
