package state

import (
	"fmt"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// BenchmarkStatusBatch applies 1,000 nodes' reports of 100,000 tasks
// starting, in groups of -size statuses as the leader commits them
// (server/reports.go), and reports the cost per status: past the radix
// nodes memdb tracks per index (8,192), a commit walks the whole tree
// (iradix's slowNotify).
//
//	go test -run '^$' -bench StatusBatch -benchtime 1x ./internal/state/
func BenchmarkStatusBatch(b *testing.B) {
	const nodes, tasks, perReport = 1000, 100_000, 16
	for _, size := range []int{512, 1024, 2048} {
		b.Run(fmt.Sprintf("group-%d", size), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				h := newHarness(b)
				app := testApp()
				app.Services[0].Replicas = tasks
				h.mustApply(UpsertApp{App: app, Now: t0})
				for n := range nodes {
					h.mustApply(UpsertNode{Node: testNode(fmt.Sprintf("n%04d", n))})
				}
				for lo := 0; lo < tasks; lo += 1024 {
					var u TaskUpdates
					for i := lo; i < min(lo+1024, tasks); i++ {
						u.Create = append(u.Create, testTask(fmt.Sprintf("t%06d", i), "api", i+1))
						u.Assign = append(u.Assign, Assignment{TaskID: fmt.Sprintf("t%06d", i), NodeID: fmt.Sprintf("n%04d", i%nodes)})
					}
					u.Now = t0
					h.mustApply(u)
				}
				// Reports of perReport statuses, a node's tasks each, in the
				// order nodes report: round the nodes.
				var reports []TaskStatusUpdate
				for k := 0; k < tasks/nodes; k += perReport {
					for n := range nodes {
						r := TaskStatusUpdate{NodeID: fmt.Sprintf("n%04d", n), Now: t0}
						for j := k; j < min(k+perReport, tasks/nodes); j++ {
							r.Statuses = append(r.Statuses, types.TaskStatus{TaskID: fmt.Sprintf("t%06d", j*nodes+n), State: types.TaskStarting})
						}
						reports = append(reports, r)
					}
				}
				b.StartTimer()
				for len(reports) > 0 {
					var g TaskStatusBatch
					count := 0
					for len(reports) > 0 && count+len(reports[0].Statuses) <= size {
						count += len(reports[0].Statuses)
						g.Reports = append(g.Reports, reports[0])
						reports = reports[1:]
					}
					h.mustApply(g)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tasks), "ns/status")
		})
	}
}
