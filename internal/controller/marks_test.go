package controller

import (
	"context"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// TestPassVisitsChangedApps: a pass reconciles the apps whose state
// changed, those whose time came and, for placement, those with pending
// tasks; every app when the nodes change. A pass over every app for every
// change was 38% of the leader's CPU at 300 apps (issue 20).
func TestPassVisitsChangedApps(t *testing.T) {
	w := newWorld(t)
	var last PassReport
	w.rec.OnPass = func(r PassReport) { last = r }
	pass := func(t *testing.T) PassReport {
		t.Helper()
		if _, err := w.rec.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
		return last
	}
	w.node("n1")
	big := func(name string) *types.Service { // half the node's memory
		svc := service(name, 1)
		svc.Resources.Reservations.MemoryBytes = 4 << 30
		return svc
	}
	slow := service("web", 1)
	slow.RestartPolicy.Delay = 5 * time.Second
	w.up(&types.App{Name: "a", Services: []*types.Service{slow}})
	w.up(&types.App{Name: "b", Services: []*types.Service{service("web", 1)}})
	w.up(&types.App{Name: "fill", Services: []*types.Service{big("db")}})
	w.up(&types.App{Name: "wait", Services: []*types.Service{big("db")}})
	w.step()
	for _, app := range []string{"a", "b", "fill"} {
		w.runAll(app, w.tasks(app, "")[0].Service)
	}
	w.step()
	if got := w.wanted("wait", "db"); got[types.TaskPending] != 0 {
		t.Fatalf("wait's task: %v, want it placed beside fill's", got)
	}
	w.runAll("wait", "db")
	w.up(&types.App{Name: "late", Services: []*types.Service{big("db")}}) // the node is full now
	w.step()
	if got := w.wanted("late", "db"); got[types.TaskPending] != 1 {
		t.Fatalf("late's task: %v, want it pending (the node is full)", got)
	}
	w.clock.Advance(time.Minute) // every replica counts as up: no app waits for its time
	w.step()

	t.Run("nothing changed: no app is visited", func(t *testing.T) {
		if r := pass(t); r.Visited != 0 || r.Full {
			t.Errorf("pass %+v, want none visited", r)
		}
	})
	t.Run("one app's task fails: that app alone", func(t *testing.T) {
		cur := current(w.tasks("a", "web"))
		w.report(cur.ID, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(1), FinishedAt: w.clock.Now()})
		if r := pass(t); r.Visited != 1 || r.Full {
			t.Errorf("pass %+v, want 1 visited", r)
		}
		if c := current(w.tasks("a", "web")); c.ID != cur.ID {
			t.Fatalf("a restarted before its delay")
		}
	})
	t.Run("its restart delay passes: that app alone, restarted", func(t *testing.T) {
		w.clock.Advance(5 * time.Second)
		if r := pass(t); r.Visited != 1 {
			t.Errorf("pass %+v, want 1 visited", r)
		}
		if c := current(w.tasks("a", "web")); c.Attempt != 1 {
			t.Fatalf("a not restarted after its delay: %+v", c)
		}
		w.step()
	})
	t.Run("another app's task ends: the pending one is placed", func(t *testing.T) {
		w.must(&state.ScaleService{App: "fill", Service: "db", Replicas: 0})
		w.step()
		for _, tk := range w.tasks("fill", "db") {
			if tk.DesiredState == types.DesiredShutdown && tk.HoldsResources() {
				w.report(tk.ID, types.TaskStatus{State: types.TaskShutdown, FinishedAt: w.clock.Now()})
			}
		}
		w.step()
		if got := w.wanted("late", "db"); got[types.TaskAssigned] != 1 {
			t.Errorf("late's task: %v, want it placed once fill's ended", got)
		}
	})
	t.Run("a node changes: every app", func(t *testing.T) {
		w.node("n2")
		if r := pass(t); !r.Full || r.Visited != 5 {
			t.Errorf("pass %+v, want all 5 visited", r)
		}
	})
}
