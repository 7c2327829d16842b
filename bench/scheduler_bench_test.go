package bench

import (
	"fmt"
	"testing"

	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/types"
)

// The scheduler benchmarks place 10 services of 1,000 replicas each on a
// 10,000-node cluster already running 20,000 tasks, and report placements
// per second of Place alone (building the snapshot is timed separately by
// BenchmarkNewCluster10kNodes).
const (
	benchNodes    = 10_000
	benchServices = 10
	benchReplicas = 1_000
	benchRunning  = 20_000
	benchZones    = 10
)

func BenchmarkPlace10kNodes(b *testing.B) { benchPlace(b, nil) }

func BenchmarkPlace10kNodesSpread(b *testing.B) {
	benchPlace(b, []string{"node.labels.zone"})
}

// BenchmarkPlaceOne10kNodes places a single task per Place call: the cost a
// pass pays to build a service's candidate heaps, which larger plans amortise.
func BenchmarkPlaceOne10kNodes(b *testing.B) {
	nodes, tasks, services := benchCluster()
	req := benchRequests(nil)[0]
	c := scheduler.NewCluster(nodes, tasks, services)
	for i := 0; b.Loop(); i++ {
		r := req
		t := *req.Task
		t.ID = fmt.Sprintf("one-%d", i)
		r.Task = &t
		if plan := c.Place([]scheduler.Request{r}); len(plan.Placements) != 1 {
			b.Fatalf("plan = %+v, want one placement", plan)
		}
	}
}

func BenchmarkNewCluster10kNodes(b *testing.B) {
	nodes, tasks, services := benchCluster()
	for b.Loop() {
		scheduler.NewCluster(nodes, tasks, services)
	}
}

func benchPlace(b *testing.B, prefs []string) {
	nodes, tasks, services := benchCluster()
	reqs := benchRequests(prefs)
	placed := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		c := scheduler.NewCluster(nodes, tasks, services)
		b.StartTimer()
		plan := c.Place(reqs)
		if len(plan.Failures) > 0 {
			b.Fatalf("%d failures, first: %+v", len(plan.Failures), plan.Failures[0])
		}
		placed += len(plan.Placements)
	}
	b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "placements/s")
}

// benchCluster builds the nodes (32 cores, 128 GiB, spread over zones) and
// the tasks already running on them, of one background service.
func benchCluster() ([]*types.Node, []*types.Task, map[string]*types.Service) {
	bg := &types.Service{Name: "background", Resources: types.Resources{
		Reservations: types.ResourceAmounts{NanoCPUs: 2e8, MemoryBytes: 256 << 20}}}
	nodes := make([]*types.Node, benchNodes)
	for i := range nodes {
		nodes[i] = &types.Node{
			ID:           fmt.Sprintf("node-%05d", i),
			Name:         fmt.Sprintf("host-%05d", i),
			Role:         types.RoleWorker,
			Labels:       map[string]string{"zone": fmt.Sprintf("z%d", i%benchZones)},
			Capacity:     types.ResourceAmounts{NanoCPUs: 32e9, MemoryBytes: 128 << 30},
			Drivers:      []string{types.DriverDocker},
			Status:       types.NodeReady,
			Availability: types.AvailabilityActive,
		}
	}
	tasks := make([]*types.Task, benchRunning)
	for i := range tasks {
		// A skewed spread, so nodes differ in load.
		n := nodes[(i*i)%benchNodes]
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
