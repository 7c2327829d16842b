package controller

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// TestSchedViewMatchesFresh drives a store through random sequences of
// changes (nodes joining, going down, drained, relabelled, removed; apps
// submitted with new reservations and ports, scaled; tasks running,
// failing, completing), reconciling between them so that the reconciler
// places on its kept view, and checks after every change that the kept
// view, brought up to date, counts on every node what a view built afresh
// from the store counts.
func TestSchedViewMatchesFresh(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 5))
			w := newWorld(t)
			pick := func(n int) int { return rng.IntN(n) }
			nodeIDs := []string{"n1", "n2", "n3", "n4", "n5"}
			for _, id := range nodeIDs[:3] {
				w.node(id)
			}
			for step := range 80 {
				view := w.store.View()
				switch op := pick(11); op {
				case 0:
					w.node(nodeIDs[pick(len(nodeIDs))])
				case 1:
					if n := view.Node(nodeIDs[pick(len(nodeIDs))]); n != nil {
						st := []types.NodeStatus{types.NodeDown, types.NodeReady}[pick(2)]
						w.must(&state.SetNodeStatus{ID: n.ID, Status: st, Now: w.clock.Now()})
					}
				case 2:
					if n := view.Node(nodeIDs[pick(len(nodeIDs))]); n != nil {
						av := []types.Availability{types.AvailabilityDrain, types.AvailabilityActive}[pick(2)]
						w.must(&state.SetNodeAvailability{ID: n.ID, Availability: av})
					}
				case 3:
					if n := view.Node(nodeIDs[pick(len(nodeIDs))]); n != nil {
						w.must(&state.UpdateNodeLabels{ID: n.ID, Add: map[string]string{"zone": fmt.Sprint("z", pick(2))}})
					}
				case 4:
					if n := view.Node(nodeIDs[pick(len(nodeIDs))]); n != nil && pick(3) == 0 {
						w.must(&state.DeleteNode{ID: n.ID, Now: w.clock.Now()})
					}
				case 5, 6:
					w.up(randomApp(rng))
				case 7:
					if view.App("a") == nil {
						break
					}
					w.must(&state.ScaleService{App: "a", Service: "web", Replicas: pick(8), Now: w.clock.Now()})
				default:
					var live []*types.Task
					for _, tk := range view.Tasks(state.TaskFilter{}) {
						if tk.State == types.TaskAssigned || tk.State == types.TaskRunning {
							live = append(live, tk)
						}
					}
					if len(live) > 0 {
						tk := live[pick(len(live))]
						st := []types.TaskState{types.TaskRunning, types.TaskRunning, types.TaskFailed, types.TaskComplete}[pick(4)]
						w.report(tk.ID, types.TaskStatus{State: st, ExitCode: exitCode(1), StartedAt: w.clock.Now()})
					}
				}
				w.step()
				view = w.store.View()
				w.rec.sched.mu.Lock()
				got := w.rec.sched.sync(view).Usage()
				w.rec.sched.mu.Unlock()
				want := scheduler.NewCluster(view.Nodes(), PlacedTasks(view), Services(view)).Usage()
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("step %d: kept view counts\n %+v\nfresh view counts\n %+v", step, got, want)
				}
			}
		})
	}
}

// randomApp is app "a" with a web service whose reservations, port and
// placement vary, and a global agent.
func randomApp(rng *rand.Rand) *types.App {
	web := service("web", 1+rng.IntN(6))
	web.Resources.Reservations = types.ResourceAmounts{NanoCPUs: int64(rng.IntN(3)) * 5e8, MemoryBytes: int64(rng.IntN(3)) << 30}
	if rng.IntN(2) == 0 {
		web.Ports = []types.Port{{Target: 80, Published: uint16(8080 + rng.IntN(2)), Protocol: "tcp"}}
	}
	if rng.IntN(2) == 0 {
		web.Placement.Preferences = []string{"node.labels.zone"}
	}
	agent := service("agent", 0)
	agent.Mode = types.ModeGlobal
	agent.Resources.Reservations.MemoryBytes = int64(rng.IntN(2)) << 29
	return &types.App{Name: "a", Services: []*types.Service{web, agent}}
}
