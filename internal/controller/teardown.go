package controller

import (
	"slices"

	"github.com/berth-dev/berth/internal/types"
)

// teardown shuts down every task of an app being removed, and reports
// whether the app can be purged: all its tasks have ended and every ready
// node has removed the app's networks (and volumes). A node that is down
// cannot answer; it is not waited for.
func (p *pass) teardown(app *types.App) (purge bool) {
	done := true
	for _, t := range p.view.Tasks(taskFilter(app.Name, "")) {
		p.shutdown(t)
		if !t.State.Terminal() && !(t.State == types.TaskPending || t.NodeID == "") {
			if n := p.view.Node(t.NodeID); n != nil && n.Status == types.NodeReady {
				done = false
			}
		}
	}
	if !done {
		return false
	}
	for _, n := range p.view.Nodes() {
		if n.Status == types.NodeReady && !slices.Contains(app.TornDownOn, n.ID) {
			return false
		}
	}
	return true
}
