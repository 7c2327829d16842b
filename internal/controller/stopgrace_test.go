package controller

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// TestForceRecreateStopGrace: up --force-recreate -t 3 replaces a service
// whose spec did not change, and each replaced task is told to stop with
// the 3s grace, while db is left alone. down -t 4 gives
// every task of the app its grace.
func TestForceRecreateStopGrace(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	app := &types.App{Name: "a", Services: []*types.Service{service("web", 2), service("db", 1)}}
	w.up(app)
	if d, _, _ := w.roll(1, agentBehaviour{}); d.State != types.DeploymentSucceeded {
		t.Fatalf("version 1: %+v", d)
	}
	w.runAll("a", "db")
	w.step()
	old := w.tasks("a", "web")
	w.must(&state.UpsertApp{App: &types.App{Name: "a", Services: []*types.Service{service("web", 2), service("db", 1)}},
		Now: w.clock.Now(), Deploy: true, Recreate: []string{"web"}, StopGrace: 3 * time.Second})
	if d, _, _ := w.roll(2, agentBehaviour{}); d.State != types.DeploymentSucceeded {
		t.Fatalf("version 2: %+v", d)
	}
	for _, tk := range old {
		got := w.store.View().Task(tk.ID)
		if got.DesiredState != types.DesiredShutdown || got.StopGrace != 3*time.Second {
			t.Errorf("old web task %s: desired %s, grace %s; want shutdown with 3s", tk.ID, got.DesiredState, got.StopGrace)
		}
	}
	for _, tk := range w.tasks("a", "db") {
		if tk.DesiredState != types.DesiredRunning || tk.ServiceVersion != 1 {
			t.Errorf("db task %s was touched: %+v", tk.ID, tk)
		}
	}
	w.must(&state.DeleteApp{Name: "a", Now: w.clock.Now(), StopGrace: 4 * time.Second})
	w.step()
	for _, tk := range w.tasks("a", "db") {
		if tk.DesiredState != types.DesiredShutdown || tk.StopGrace != 4*time.Second {
			t.Errorf("down -t 4: db task %s desired %s, grace %s", tk.ID, tk.DesiredState, tk.StopGrace)
		}
	}
}
