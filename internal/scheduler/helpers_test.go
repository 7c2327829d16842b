package scheduler

import (
	"fmt"

	"github.com/berth-dev/berth/internal/types"
)

const (
	gib = int64(1) << 30
	cpu = int64(1e9)
)

// node builds a ready, active worker offering docker and exec; options
// change it.
func node(id string, opts ...func(*types.Node)) *types.Node {
	n := &types.Node{
		ID:           id,
		Name:         "host-" + id,
		Role:         types.RoleWorker,
		Drivers:      []string{types.DriverDocker, types.DriverExec},
		Status:       types.NodeReady,
		Availability: types.AvailabilityActive,
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func labels(kv ...string) func(*types.Node) {
	return func(n *types.Node) {
		n.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func capacity(nanoCPUs, mem int64) func(*types.Node) {
	return func(n *types.Node) { n.Capacity = types.ResourceAmounts{NanoCPUs: nanoCPUs, MemoryBytes: mem} }
}

func down(n *types.Node)    { n.Status = types.NodeDown }
func drained(n *types.Node) { n.Availability = types.AvailabilityDrain }
func manager(n *types.Node) { n.Role = types.RoleManager }
func dockerOnly(n *types.Node) {
	n.Drivers = []string{types.DriverDocker}
}

// service builds a replicated docker service of app "app"; options change it.
func service(name string, opts ...func(*types.Service)) *types.Service {
	s := &types.Service{Name: name, Mode: types.ModeReplicated, Replicas: 1}
	for _, o := range opts {
		o(s)
	}
	return s
}

func reserve(nanoCPUs, mem int64) func(*types.Service) {
	return func(s *types.Service) {
		s.Resources.Reservations = types.ResourceAmounts{NanoCPUs: nanoCPUs, MemoryBytes: mem}
	}
}

func publish(port uint16, proto, hostIP string) func(*types.Service) {
	return func(s *types.Service) {
		s.Ports = append(s.Ports, types.Port{Target: 80, Published: port, Protocol: proto, HostIP: hostIP})
	}
}

func constraints(cs ...string) func(*types.Service) {
	return func(s *types.Service) { s.Placement.Constraints = cs }
}

func spread(labels ...string) func(*types.Service) {
	return func(s *types.Service) { s.Placement.Preferences = labels }
}

func maxPerNode(n int) func(*types.Service) {
	return func(s *types.Service) { s.Placement.MaxReplicasPerNode = n }
}

func driver(d string) func(*types.Service) {
	return func(s *types.Service) { s.Driver = d }
}

// running is a task of svc in state running on nodeID.
func running(id string, svc *types.Service, nodeID string) *types.Task {
	return &types.Task{ID: id, App: "app", Service: svc.Name, NodeID: nodeID,
		DesiredState: types.DesiredRunning, State: types.TaskRunning}
}

// requests makes n pending tasks of svc, with IDs "<svc>-1".."<svc>-n".
func requests(svc *types.Service, n int) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{Service: svc, Task: &types.Task{
			ID: fmt.Sprintf("%s-%d", svc.Name, i+1), App: "app", Service: svc.Name, Slot: i + 1,
			DesiredState: types.DesiredRunning, State: types.TaskPending,
		}}
	}
	return reqs
}

// servicesOf indexes services the way NewCluster wants them.
func servicesOf(svcs ...*types.Service) map[string]*types.Service {
	m := map[string]*types.Service{}
	for _, s := range svcs {
		m[types.ServiceID("app", s.Name)] = s
	}
	return m
}

// perNode counts a plan's placements per node ID.
func perNode(p Plan) map[string]int {
	m := map[string]int{}
	for _, pl := range p.Placements {
		m[pl.NodeID]++
	}
	return m
}
