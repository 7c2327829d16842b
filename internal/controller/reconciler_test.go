package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

func TestReplicasPlacedAndScaled(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.up(&types.App{Name: "a", Services: []*types.Service{service("web", 3)}})
	w.step()
	if got := w.wanted("a", "web"); got[types.TaskAssigned] != 3 {
		t.Fatalf("after up: %v, want 3 assigned", got)
	}
	w.runAll("a", "web")
	w.must(&state.ScaleService{App: "a", Service: "web", Replicas: 1})
	w.step()
	if got := w.wanted("a", "web"); got[types.TaskRunning] != 1 || len(got) != 1 {
		t.Fatalf("after scale 1: %v, want 1 running", got)
	}
	for _, tk := range w.tasks("a", "web") {
		if tk.Slot > 1 && tk.DesiredState != types.DesiredShutdown {
			t.Errorf("slot %d desired %s, want shutdown", tk.Slot, tk.DesiredState)
		}
	}
}

func TestRestartPolicy(t *testing.T) {
	cases := []struct {
		name     string
		policy   types.RestartPolicy
		attempts int // restarts already made in the slot
		final    types.TaskStatus
		restart  bool
	}{
		{"on-failure restarts a crash", types.RestartPolicy{Condition: types.RestartOnFailure}, 0, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(137)}, true},
		{"on-failure leaves a completed one-shot", types.RestartPolicy{Condition: types.RestartOnFailure}, 0, types.TaskStatus{State: types.TaskComplete, ExitCode: exitCode(0)}, false},
		{"any restarts a completed task", types.RestartPolicy{Condition: types.RestartAny}, 0, types.TaskStatus{State: types.TaskComplete, ExitCode: exitCode(0)}, true},
		{"none never restarts", types.RestartPolicy{Condition: types.RestartNone}, 0, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(1)}, false},
		{"none still replaces a lost task", types.RestartPolicy{Condition: types.RestartNone}, 0, types.TaskStatus{State: types.TaskLost}, true},
		{"max attempts reached", types.RestartPolicy{Condition: types.RestartOnFailure, MaxAttempts: 2}, 2, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(1)}, false},
		{"max attempts not reached", types.RestartPolicy{Condition: types.RestartOnFailure, MaxAttempts: 3}, 2, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(1)}, true},
		{"unhealthy is replaced", types.RestartPolicy{Condition: types.RestartOnFailure}, 0, types.TaskStatus{State: types.TaskRunning, Health: types.HealthUnhealthy}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.node("n1")
			svc := service("job", 1)
			svc.RestartPolicy = tc.policy
			w.up(&types.App{Name: "a", Services: []*types.Service{svc}})
			w.step()
			// Make the slot's history: tc.attempts crashed tasks before.
			for i := 0; i <= tc.attempts; i++ {
				cur := current(w.tasks("a", "job"))
				w.report(cur.ID, types.TaskStatus{State: types.TaskRunning, StartedAt: w.clock.Now()})
				st := tc.final
				if i < tc.attempts {
					st = types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(1)}
				}
				st.FinishedAt = w.clock.Now()
				if st.State == types.TaskLost {
					w.must(&state.TaskStatusUpdate{NodeID: cur.NodeID, Statuses: []types.TaskStatus{{TaskID: cur.ID, State: types.TaskLost}}})
				} else {
					w.report(cur.ID, st)
				}
				w.clock.Advance(time.Minute) // past any backoff
				w.step()
			}
			cur := current(w.tasks("a", "job"))
			restarted := cur.Attempt == tc.attempts+1
			if restarted != tc.restart {
				t.Fatalf("restarted = %v (current attempt %d, state %s), want %v", restarted, cur.Attempt, cur.State, tc.restart)
			}
		})
	}
}

func TestRestartWaitsForDelay(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	svc := service("web", 1)
	svc.RestartPolicy.Delay = 5 * time.Second
	w.up(&types.App{Name: "a", Services: []*types.Service{svc}})
	w.step()
	cur := current(w.tasks("a", "web"))
	w.report(cur.ID, types.TaskStatus{State: types.TaskRunning, StartedAt: w.clock.Now()})
	w.report(cur.ID, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(2), FinishedAt: w.clock.Now()})
	wake := w.step()
	if want := w.clock.Now().Add(5 * time.Second); !wake.Equal(want) {
		t.Fatalf("wake = %v, want %v", wake, want)
	}
	if c := current(w.tasks("a", "web")); c.ID != cur.ID {
		t.Fatalf("restarted before the delay")
	}
	w.clock.Advance(5 * time.Second)
	w.step()
	if c := current(w.tasks("a", "web")); c.ID == cur.ID || c.Attempt != 1 {
		t.Fatalf("not restarted after the delay: %+v", c)
	}
}

func TestChangedSpecReplacesUnchangedKeeps(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	web, db := service("web", 2), service("db", 1)
	w.up(&types.App{Name: "a", Services: []*types.Service{web, db}})
	w.step()
	w.runAll("a", "web")
	w.runAll("a", "db")
	dbBefore := current(w.tasks("a", "db")).ID

	web2, db2 := service("web", 2), service("db", 1)
	web2.Env = map[string]string{"V": "2"}
	web2.UpdateConfig = &types.UpdateConfig{Parallelism: new(0)} // all at once
	w.up(&types.App{Name: "a", Services: []*types.Service{web2, db2}})
	w.step()
	if c := current(w.tasks("a", "db")); c.ID != dbBefore {
		t.Errorf("unchanged service db was replaced")
	}
	for _, tk := range w.tasks("a", "web") {
		if tk.DesiredState == types.DesiredRunning && tk.ServiceVersion != 2 {
			t.Errorf("web task %s still wanted at version %d", tk.ID, tk.ServiceVersion)
		}
	}
	// stop-first (the default): the new tasks wait for the old ones to end.
	if got := w.wanted("a", "web"); got[types.TaskPending] != 2 {
		t.Errorf("web after change, the old tasks still stopping: %v, want 2 new pending", got)
	}
	for _, tk := range w.tasks("a", "web") {
		if tk.DesiredState == types.DesiredShutdown {
			w.report(tk.ID, types.TaskStatus{State: types.TaskShutdown})
		}
	}
	w.step()
	if got := w.wanted("a", "web"); got[types.TaskAssigned] != 2 {
		t.Errorf("web once the old tasks stopped: %v, want 2 new assigned", got)
	}
}

func TestDependsOnHoldsPlacement(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	db := service("db", 1)
	db.Healthcheck = &types.Healthcheck{Test: []string{"CMD", "true"}}
	web := service("web", 1)
	web.DependsOn = []types.Dependency{{Service: "db", Condition: types.ConditionHealthy, Required: true}}
	w.up(&types.App{Name: "a", Services: []*types.Service{web, db}})
	w.step()
	webTask := current(w.tasks("a", "web"))
	if webTask.State != types.TaskPending || !strings.Contains(webTask.PendingReason, "db to be healthy") {
		t.Fatalf("web before db healthy: %s %q", webTask.State, webTask.PendingReason)
	}
	dbTask := current(w.tasks("a", "db"))
	w.report(dbTask.ID, types.TaskStatus{State: types.TaskRunning, Health: types.HealthStarting})
	w.step()
	if current(w.tasks("a", "web")).State != types.TaskPending {
		t.Fatalf("web placed while db only starting")
	}
	w.report(dbTask.ID, types.TaskStatus{State: types.TaskRunning, Health: types.HealthHealthy})
	w.step()
	if s := current(w.tasks("a", "web")).State; s != types.TaskAssigned {
		t.Fatalf("web after db healthy: %s, want assigned", s)
	}
}

func TestPublishedPortOneReplicaPerNode(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	web := service("web", 3)
	web.Ports = []types.Port{{Target: 80, Published: 8080, Protocol: "tcp"}}
	w.up(&types.App{Name: "a", Services: []*types.Service{web}})
	w.step()
	got := w.wanted("a", "web")
	if got[types.TaskAssigned] != 1 || got[types.TaskPending] != 2 {
		t.Fatalf("%v, want 1 assigned and 2 pending", got)
	}
	for _, tk := range w.tasks("a", "web") {
		if tk.State == types.TaskPending && !strings.Contains(tk.PendingReason, "8080") {
			t.Errorf("pending reason %q does not name the port", tk.PendingReason)
		}
	}
	// Settled: another pass writes nothing.
	before := w.index
	w.step()
	if w.index != before {
		t.Errorf("an unplaceable task caused writes on every pass")
	}
}

func TestTeardownPurgesAfterNodesReport(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.up(&types.App{Name: "a", Services: []*types.Service{service("web", 2)}})
	w.step()
	w.runAll("a", "web")
	w.must(&state.DeleteApp{Name: "a", Volumes: true})
	w.step()
	for _, tk := range w.tasks("a", "web") {
		if tk.DesiredState != types.DesiredShutdown {
			t.Fatalf("task %s still desired %s", tk.ID, tk.DesiredState)
		}
	}
	w.step()
	if w.store.View().App("a") == nil {
		t.Fatalf("app purged before the node tore it down")
	}
	w.must(&state.TeardownDone{App: "a", NodeID: "n1", Now: w.clock.Now()})
	w.step()
	if w.store.View().App("a") != nil || len(w.tasks("a", "")) != 0 {
		t.Fatalf("app not purged after teardown")
	}
}

func TestGlobalOneTaskPerNode(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.node("n2")
	svc := service("agent", 0)
	svc.Mode = types.ModeGlobal
	w.up(&types.App{Name: "a", Services: []*types.Service{svc}})
	w.step()
	nodes := map[string]int{}
	for _, tk := range w.tasks("a", "agent") {
		if tk.State == types.TaskAssigned {
			nodes[tk.NodeID]++
		}
	}
	if nodes["n1"] != 1 || nodes["n2"] != 1 {
		t.Fatalf("global tasks per node: %v", nodes)
	}
}

func TestHistoryBounded(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	svc := service("crash", 1)
	svc.RestartPolicy.Condition = types.RestartAny
	w.up(&types.App{Name: "a", Services: []*types.Service{svc}})
	w.step()
	for i := 0; i < 10; i++ {
		cur := current(w.tasks("a", "crash"))
		w.report(cur.ID, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(1), FinishedAt: w.clock.Now()})
		w.clock.Advance(time.Minute)
		w.step()
	}
	if n := len(w.tasks("a", "crash")); n > w.rec.HistoryPerSlot+1 {
		t.Fatalf("%d tasks kept for one slot, want at most %d", n, w.rec.HistoryPerSlot+1)
	}
}

type fakeBeats map[string]time.Time

func (b fakeBeats) Last(id string) (time.Time, bool) { t, ok := b[id]; return t, ok }

func TestNodeMonitorMarksSilentNodeDown(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.node("n2")
	w.up(&types.App{Name: "a", Services: []*types.Service{service("web", 2)}})
	w.step()
	w.runAll("a", "web")
	beats := fakeBeats{"n1": w.clock.Now(), "n2": w.clock.Now()}
	mon := NewNodeMonitor(w.store, w, beats, w.clock, 15*time.Second, nil)
	w.clock.Advance(10 * time.Second)
	beats["n1"] = w.clock.Now()
	if err := mon.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.store.View().Node("n2").Status != types.NodeReady {
		t.Fatalf("n2 down before its TTL")
	}
	w.clock.Advance(10 * time.Second)
	beats["n1"] = w.clock.Now()
	if err := mon.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.store.View().Node("n2").Status != types.NodeDown {
		t.Fatalf("n2 not marked down after 20s of silence")
	}
	w.step()
	for _, tk := range w.tasks("a", "web") {
		if tk.DesiredState == types.DesiredRunning && tk.NodeID != "n1" {
			t.Errorf("wanted task %s on %s, want all on n1", tk.ID, tk.NodeID)
		}
	}
	if got := w.wanted("a", "web"); got[types.TaskRunning]+got[types.TaskAssigned] != 2 {
		t.Errorf("after node loss: %v, want 2 on n1", got)
	}
}

func TestDrainMovesTasks(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.node("n2")
	w.up(&types.App{Name: "a", Services: []*types.Service{service("web", 4)}})
	w.step()
	w.runAll("a", "web")
	w.must(&state.SetNodeAvailability{ID: "n2", Availability: types.AvailabilityDrain})
	w.step()
	for _, tk := range w.tasks("a", "web") {
		if tk.DesiredState == types.DesiredRunning && tk.NodeID != "n1" {
			t.Errorf("wanted task %s is on %s after draining n2", tk.ID, tk.NodeID)
		}
		if tk.NodeID == "n2" && tk.DesiredState != types.DesiredShutdown {
			t.Errorf("task %s on drained n2 not shut down", tk.ID)
		}
	}
	if got := w.wanted("a", "web"); got[types.TaskRunning]+got[types.TaskAssigned] != 4 {
		t.Fatalf("after drain: %v, want 4 on n1", got)
	}
	// Activating n2 again moves nothing back (rebalancing is explicit).
	w.runAll("a", "web")
	w.must(&state.SetNodeAvailability{ID: "n2", Availability: types.AvailabilityActive})
	before := w.index
	w.step()
	if w.index != before {
		t.Fatalf("activating a node moved tasks")
	}
}

func TestRemovedNodeTasksReplaced(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.node("n2")
	w.up(&types.App{Name: "a", Services: []*types.Service{service("web", 2)}})
	w.step()
	w.runAll("a", "web")
	w.must(&state.DeleteNode{ID: "n2", Now: w.clock.Now()})
	w.step()
	if got := w.wanted("a", "web"); got[types.TaskRunning]+got[types.TaskAssigned] != 2 {
		t.Fatalf("after removing n2: %v, want 2 on n1", got)
	}
}
