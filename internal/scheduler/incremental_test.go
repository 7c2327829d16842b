package scheduler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// store is the test's model of what the controller's store holds.
type store struct {
	nodes    map[string]*types.Node
	tasks    map[string]*types.Task
	services map[string]*types.Service
}

func (s *store) fresh() *Cluster {
	var nodes []*types.Node
	for _, n := range s.nodes {
		nodes = append(nodes, n)
	}
	var tasks []*types.Task
	for _, t := range s.tasks {
		tasks = append(tasks, t)
	}
	return NewCluster(nodes, tasks, s.services)
}

// TestIncrementalViewMatchesFresh applies random sequences of changes (nodes
// joining, leaving, going down, drained, relabelled; tasks placed, running,
// told to stop, ending; specs changing what they reserve and publish) to a
// kept Cluster, placing between them, and checks after every change that
// it counts what a Cluster built afresh from the same state counts, and
// that both place the next requests exactly alike.
func TestIncrementalViewMatchesFresh(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 99))
		st := &store{nodes: map[string]*types.Node{}, tasks: map[string]*types.Task{}, services: map[string]*types.Service{}}
		names := []string{"s0", "s1", "s2"}
		for _, name := range names {
			st.services[types.ServiceID("app", name)] = randomService(rng, name)
		}
		c := NewCluster(nil, nil, st.services)
		ids := 0
		for step := range 60 {
			what := ""
			switch op := rng.IntN(10); {
			case op < 2 || len(st.nodes) == 0: // a node joins, or changes
				id := fmt.Sprintf("n%02d", rng.IntN(12))
				n := randomNode(rng, id)
				st.nodes[id] = n
				c.SetNode(n)
				what = "set node " + id
			case op == 2: // a node leaves
				id := pick(rng, slices.Sorted(mapsKeys(st.nodes))...)
				delete(st.nodes, id)
				c.RemoveNode(id)
				what = "remove node " + id
			case op == 3: // a spec changes
				name := pick(rng, names...)
				svc := randomService(rng, name)
				st.services[types.ServiceID("app", name)] = svc
				c.SetService(types.ServiceID("app", name), svc)
				what = "set service " + name
			case op < 6 && len(st.tasks) > 0: // a task changes state or ends
				id := pick(rng, slices.Sorted(mapsKeys(st.tasks))...)
				tk := *st.tasks[id]
				switch rng.IntN(4) {
				case 0:
					tk.State = types.TaskRunning
				case 1:
					tk.DesiredState = types.DesiredShutdown
				case 2:
					tk.State = types.TaskFailed
				case 3:
					tk.NodeID = pick(rng, "n01", "n02", "gone")
				}
				if tk.HoldsResources() {
					st.tasks[id] = &tk
				} else {
					delete(st.tasks, id)
				}
				c.SetTask(&tk)
				what = "set task " + id
			default: // a plan: placed on both, then committed as the store would
				var reqs []Request
				for range 1 + rng.IntN(6) {
					name := pick(rng, names...)
					ids++
					r := Request{Service: st.services[types.ServiceID("app", name)], Task: &types.Task{
						ID: fmt.Sprintf("t%d", ids), App: "app", Service: name, State: types.TaskPending, DesiredState: types.DesiredRunning}}
					if rng.IntN(8) == 0 {
						r.Task.NodeID = fmt.Sprintf("n%02d", rng.IntN(12))
					}
					reqs = append(reqs, r)
				}
				want := st.fresh().Place(reqs)
				got := c.Place(reqs)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d step %d: kept view planned\n %+v\nfresh view planned\n %+v", seed, step, got, want)
				}
				for _, p := range got.Placements {
					c.RemoveTask(p.TaskID) // as the controller does once the plan is applied
					tk := &types.Task{ID: p.TaskID, App: "app", NodeID: p.NodeID, State: types.TaskAssigned, DesiredState: types.DesiredRunning}
					for _, r := range reqs {
						if r.Task.ID == p.TaskID {
							tk.Service = r.Task.Service
						}
					}
					st.tasks[tk.ID] = tk
					c.SetTask(tk)
				}
				what = fmt.Sprintf("placed %d", len(got.Placements))
			}
			if got, want := c.Usage(), st.fresh().Usage(); !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d step %d (%s): kept view counts\n %+v\nfresh view counts\n %+v", seed, step, what, got, want)
			}
		}
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
