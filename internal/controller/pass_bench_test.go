package controller

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// BenchmarkPassOverService: one reconcile pass over a converged service of
// N running replicas, woken by one replica's report, as each report batch
// of a large deploy wakes it. The pass visits the whole service: its cost
// per replica is what a 100,000-task deploy pays on every report.
//
//	go test -run '^$' -bench PassOverService -benchtime 20x ./internal/controller/
func BenchmarkPassOverService(b *testing.B) {
	for _, n := range []int{1_000, 20_000} {
		b.Run(fmt.Sprintf("replicas-%d", n), func(b *testing.B) {
			w := newWorld(b)
			for i := range 100 {
				w.node(fmt.Sprintf("n%03d", i))
			}
			w.up(&types.App{Name: "a", Services: []*types.Service{service("web", n)}})
			if _, err := w.rec.Step(context.Background()); err != nil {
				b.Fatal(err)
			}
			var statuses []types.TaskStatus
			byNode := map[string][]types.TaskStatus{}
			for _, t := range w.tasks("a", "web") {
				byNode[t.NodeID] = append(byNode[t.NodeID], types.TaskStatus{TaskID: t.ID, State: types.TaskRunning, StartedAt: w.clock.Now()})
			}
			for node, sts := range byNode {
				w.must(&state.TaskStatusUpdate{NodeID: node, Statuses: sts, Now: w.clock.Now()})
				statuses = append(statuses, sts[0])
			}
			if _, err := w.rec.Step(context.Background()); err != nil {
				b.Fatal(err)
			}
			one := w.store.View().Task(statuses[0].TaskID)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				// A health change of one replica: the app's key moves.
				h := types.HealthHealthy
				if i%2 == 1 {
					h = types.HealthStarting
				}
				w.must(&state.TaskStatusUpdate{NodeID: one.NodeID, Statuses: []types.TaskStatus{{TaskID: one.ID, State: types.TaskRunning, Health: h, StartedAt: one.StartedAt}}, Now: w.clock.Now()})
				b.StartTimer()
				if _, err := w.rec.Step(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/replica")
		})
	}
}
