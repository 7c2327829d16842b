package controller

import (
	"slices"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// removeRun finishes berth run --rm (or a Ctrl-C of it) on a one-off that
// was still running when asked: state.RemoveRuns stopped it, stopped
// cleans up its tasks as for any stopped service, and once every one has
// stopped the one-off and their records go.
func (p *pass) removeRun(app *types.App, svc *types.Service, tasks []*types.Task) {
	if !svc.IsOneOff() || svc.Lifecycle == nil || !svc.Lifecycle.Remove {
		return
	}
	if slices.ContainsFunc(tasks, (*types.Task).MayHaveProcess) {
		return // the next pass, woken by their reports, looks again
	}
	p.runs = append(p.runs, &state.RemoveRuns{App: app.Name, Services: []string{svc.Name}, Now: p.now})
}
