package controller

import (
	"slices"

	"github.com/berth-dev/berth/internal/types"
)

// teardown shuts down every task (tasks) of an app being removed, and reports
// whether the app can be purged: every ready node has said it removed the
// app's containers, networks (and volumes). Agents are not given the tasks
// of an app being removed, so they stop and remove those containers and
// then report the teardown; the report is the proof, not the task states.
// A node that is down cannot answer; it is not waited for.
func (p *pass) teardown(app *types.App, tasks []*types.Task) (purge bool) {
	for _, t := range tasks {
		p.shutdown(t)
	}
	for _, n := range p.view.Nodes() {
		if n.Status == types.NodeReady && !slices.Contains(app.TornDownOn, n.ID) {
			return false
		}
	}
	return true
}
