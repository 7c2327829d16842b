package controller

import (
	"testing"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// TestOneOff: a one-off (berth run) runs once, is not restarted after it
// fails, and --rm while it runs stops it, then removes it and its task.
func TestOneOff(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	one := service("web-run-0123456789ab", 1)
	one.OneOff = &types.OneOff{Of: "web"}
	one.RestartPolicy = types.RestartPolicy{Condition: types.RestartNone}
	w.up(&types.App{Name: "a", Services: []*types.Service{service("web", 1), one}})
	w.step()
	w.runAll("a", one.Name)
	ts := w.tasks("a", one.Name)
	if len(ts) != 1 {
		t.Fatalf("%d tasks of the one-off, want 1", len(ts))
	}
	w.report(ts[0].ID, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(3)})
	w.step()
	if ts := w.tasks("a", one.Name); len(ts) != 1 {
		t.Fatalf("the one-off was restarted: %d tasks", len(ts))
	}

	// Another, removed while it runs.
	two := service("web-run-ba9876543210", 1)
	two.OneOff = &types.OneOff{Of: "web"}
	two.RestartPolicy = types.RestartPolicy{Condition: types.RestartNone}
	app := w.store.View().App("a")
	w.must(&state.UpsertApp{App: &types.App{Name: "a", Services: append(app.Services, two)}, Now: w.clock.Now(), Deploy: true})
	w.step()
	w.runAll("a", two.Name)
	w.must(&state.RemoveRuns{App: "a", Services: []string{two.Name}})
	w.step()
	tt := w.tasks("a", two.Name)
	if len(tt) != 1 || tt[0].DesiredState != types.DesiredShutdown {
		t.Fatalf("the removed one-off's tasks: %+v; want one told to stop", tt)
	}
	w.report(tt[0].ID, types.TaskStatus{State: types.TaskShutdown})
	w.step()
	if got := w.store.View().App("a"); got.Service(two.Name) != nil || len(w.tasks("a", two.Name)) != 0 {
		t.Fatalf("the one-off or its task is left after it stopped")
	}
	if w.store.View().App("a").Service(one.Name) == nil {
		t.Fatal("the other one-off went too")
	}
}
