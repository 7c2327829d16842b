package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// status is the stored verdict on a service.
func (w *world) status(app, svc string) *types.ServiceStatus {
	w.t.Helper()
	a := w.store.View().App(app)
	if a == nil || a.Service(svc) == nil {
		w.t.Fatalf("no service %s/%s", app, svc)
	}
	return a.Service(svc).Status
}

// crash reports the slot's current task running, then exited with code.
func (w *world) crash(app, svc string, code int) *types.Task {
	w.t.Helper()
	cur := current(w.tasks(app, svc))
	w.report(cur.ID, types.TaskStatus{State: types.TaskRunning, StartedAt: w.clock.Now()})
	w.report(cur.ID, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(code), Error: "exit code 1", FinishedAt: w.clock.Now()})
	return cur
}

func wantState(t *testing.T, st *types.ServiceStatus, want types.ServiceState) {
	t.Helper()
	if st == nil || st.State != want {
		t.Fatalf("verdict %+v, want %s", st, want)
	}
}

func TestVerdictCrashLoopFails(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.up(&types.App{Name: "a", Services: []*types.Service{service("crash", 1)}})
	w.step()
	w.crash("a", "crash", 1)
	w.clock.Advance(time.Second) // past the backoff
	w.step()
	// One crash and a restart: it may yet come up.
	wantState(t, w.status("a", "crash"), types.ServiceConverging)
	second := w.crash("a", "crash", 1)
	w.step()
	st := w.status("a", "crash")
	wantState(t, st, types.ServiceFailed)
	if st.TaskID != second.ID || st.ExitCode == nil || *st.ExitCode != 1 || !strings.Contains(st.Reason, "a-crash-1 crash-loops") ||
		!strings.Contains(st.Reason, "code 1") {
		t.Fatalf("verdict %+v does not name the replica, its task and exit code 1", st)
	}
	// The restart that follows does not clear it: the replica is not up.
	w.clock.Advance(time.Second)
	w.step()
	w.runAll("a", "crash")
	w.step()
	wantState(t, w.status("a", "crash"), types.ServiceFailed)
}

func TestVerdictOneShotWithoutRestartFails(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	job := service("job", 1)
	job.RestartPolicy = types.RestartPolicy{Condition: types.RestartNone}
	w.up(&types.App{Name: "a", Services: []*types.Service{job}})
	w.step()
	w.crash("a", "job", 3)
	w.step()
	st := w.status("a", "job")
	wantState(t, st, types.ServiceFailed)
	if *st.ExitCode != 3 || !strings.Contains(st.Reason, "code 3") || !strings.Contains(st.Reason, "does not restart") {
		t.Fatalf("verdict %+v", st)
	}
}

func TestVerdictUpNeedsTheMonitorPeriod(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.up(&types.App{Name: "a", Services: []*types.Service{service("web", 2)}})
	w.step()
	w.runAll("a", "web")
	wake := w.step()
	wantState(t, w.status("a", "web"), types.ServiceConverging)
	if want := w.clock.Now().Add(types.MonitorPeriod); !wake.Equal(want) {
		t.Fatalf("wake %v, want %v (when the replicas have run for the monitor period)", wake, want)
	}
	w.clock.Advance(types.MonitorPeriod)
	w.step()
	wantState(t, w.status("a", "web"), types.ServiceUp)
}

func TestVerdictOneCrashThenUp(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.up(&types.App{Name: "a", Services: []*types.Service{service("web", 1)}})
	w.step()
	w.crash("a", "web", 1)
	w.clock.Advance(time.Second)
	w.step()
	w.runAll("a", "web")
	w.clock.Advance(types.MonitorPeriod)
	w.step()
	wantState(t, w.status("a", "web"), types.ServiceUp)
}

func TestVerdictUnhealthyDependencyFailsWithItsOutput(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	db := service("db", 1)
	db.Healthcheck = &types.Healthcheck{Test: []string{"CMD-SHELL", "pg_isready"}, Retries: 2}
	api := service("api", 1)
	api.DependsOn = []types.Dependency{{Service: "db", Condition: types.ConditionHealthy, Required: true}}
	w.up(&types.App{Name: "a", Services: []*types.Service{api, db}})
	w.step()
	dbTask := current(w.tasks("a", "db"))
	w.report(dbTask.ID, types.TaskStatus{State: types.TaskRunning, Health: types.HealthStarting, StartedAt: w.clock.Now()})
	w.step()
	wantState(t, w.status("a", "db"), types.ServiceConverging)
	w.report(dbTask.ID, types.TaskStatus{State: types.TaskRunning, Health: types.HealthUnhealthy, HealthOutput: "no response on 5432"})
	w.step()
	st := w.status("a", "db")
	wantState(t, st, types.ServiceFailed)
	if st.HealthOutput != "no response on 5432" || !strings.Contains(st.Reason, "a-db-1 is unhealthy") || !strings.Contains(st.Reason, "2 times") {
		t.Fatalf("db verdict %+v", st)
	}
	// Its replacement starting does not clear the verdict; api still waits.
	w.runAll("a", "db")
	w.step()
	wantState(t, w.status("a", "db"), types.ServiceFailed)
	wantState(t, w.status("a", "api"), types.ServiceConverging)
	// Once the replacement passes its check, db is up and api is placed.
	w.report(current(w.tasks("a", "db")).ID, types.TaskStatus{State: types.TaskRunning, Health: types.HealthHealthy})
	w.step()
	wantState(t, w.status("a", "db"), types.ServiceUp)
	if s := current(w.tasks("a", "api")).State; s != types.TaskAssigned {
		t.Fatalf("api after db healthy: %s", s)
	}
}

func TestNoneHealthcheckDoesNotBlockDependants(t *testing.T) {
	for _, hc := range []*types.Healthcheck{
		{Test: []string{"NONE"}}, // as the API may send it, without disable
		{Test: []string{"CMD", "true"}, Disable: true},
	} {
		w := newWorld(t)
		w.node("n1")
		db := service("db", 1)
		db.Healthcheck = hc
		web := service("web", 1)
		web.DependsOn = []types.Dependency{{Service: "db", Condition: types.ConditionHealthy, Required: true}}
		w.up(&types.App{Name: "a", Services: []*types.Service{web, db}})
		w.step()
		w.runAll("a", "db") // a disabled check reports no health
		w.step()
		if s := current(w.tasks("a", "web")).State; s != types.TaskAssigned {
			t.Fatalf("healthcheck %+v: web is %s (%q), want assigned", hc, s, current(w.tasks("a", "web")).PendingReason)
		}
	}
}

func TestVerdictStaleAfterScaleIsDropped(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.up(&types.App{Name: "a", Services: []*types.Service{service("web", 1)}})
	w.step()
	w.runAll("a", "web")
	w.clock.Advance(types.MonitorPeriod)
	w.step()
	wantState(t, w.status("a", "web"), types.ServiceUp)
	judgedOn := w.store.View().App("a").Version
	w.must(&state.ScaleService{App: "a", Service: "web", Replicas: 3})
	if st := w.status("a", "web"); st != nil {
		t.Fatalf("verdict %+v kept after scale", st)
	}
	// A verdict judged before the scale arrives late: it is dropped.
	w.must(&state.SetServiceStatus{App: "a", AppVersion: judgedOn,
		Statuses: map[string]*types.ServiceStatus{"web": {Version: 1, State: types.ServiceUp}}})
	if st := w.status("a", "web"); st != nil {
		t.Fatalf("stale verdict %+v stored", st)
	}
	w.step()
	wantState(t, w.status("a", "web"), types.ServiceConverging)
}

func TestVerdictGlobalWithoutNodesIsNotUp(t *testing.T) {
	w := newWorld(t) // no node has registered yet
	agent := service("agent", 0)
	agent.Mode = types.ModeGlobal
	w.up(&types.App{Name: "a", Services: []*types.Service{agent}})
	w.step()
	wantState(t, w.status("a", "agent"), types.ServiceConverging)
}

func TestVerdictRejectedAndGivenUp(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	web := service("web", 1)
	job := service("job", 1)
	job.RestartPolicy.MaxAttempts = 1
	w.up(&types.App{Name: "a", Services: []*types.Service{web, job}})
	w.step()
	w.report(current(w.tasks("a", "web")).ID, types.TaskStatus{State: types.TaskRejected, Error: "image img not found"})
	w.step()
	if st := w.status("a", "web"); st.State != types.ServiceFailed || !strings.Contains(st.Reason, "a-web-1 was rejected: image img not found") ||
		strings.Count(st.Reason, "image img not found") != 1 {
		t.Fatalf("web verdict %+v (the error once)", st)
	}
	w.crash("a", "job", 1)
	w.clock.Advance(time.Second)
	w.step()
	// The one restart allowed: it runs, then exits with something other
	// than a plain exit code.
	cur := current(w.tasks("a", "job"))
	w.report(cur.ID, types.TaskStatus{State: types.TaskRunning, StartedAt: w.clock.Now()})
	w.report(cur.ID, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(137), Error: "exit code 137: out of memory"})
	w.step()
	st := w.status("a", "job")
	wantState(t, st, types.ServiceFailed)
	if *st.ExitCode != 137 || !strings.Contains(st.Reason, "out of memory") {
		t.Fatalf("job verdict %+v", st)
	}
}

// A replica that served and then failed is the restart policy's business:
// the deploy is not failed until replicas that never came up fail.
func TestVerdictFailureAfterServing(t *testing.T) {
	t.Run("unhealthy after healthy", func(t *testing.T) {
		w := newWorld(t)
		w.node("n1")
		web := service("web", 1)
		web.Healthcheck = &types.Healthcheck{Test: []string{"CMD", "check"}, Retries: 3}
		w.up(&types.App{Name: "a", Services: []*types.Service{web}})
		w.step()
		first := current(w.tasks("a", "web"))
		w.report(first.ID, types.TaskStatus{State: types.TaskRunning, Health: types.HealthHealthy, StartedAt: w.clock.Now()})
		w.step()
		wantState(t, w.status("a", "web"), types.ServiceUp)
		w.clock.Advance(time.Minute)
		w.report(first.ID, types.TaskStatus{State: types.TaskRunning, Health: types.HealthUnhealthy, HealthOutput: "slow"})
		w.step()
		wantState(t, w.status("a", "web"), types.ServiceConverging) // replaced, not failed
		second := current(w.tasks("a", "web"))
		if second.ID == first.ID {
			t.Fatalf("unhealthy replica not replaced")
		}
		w.report(second.ID, types.TaskStatus{State: types.TaskRunning, Health: types.HealthUnhealthy, HealthOutput: "down", StartedAt: w.clock.Now()})
		w.step()
		if st := w.status("a", "web"); st.State != types.ServiceFailed || st.TaskID != second.ID || st.HealthOutput != "down" {
			t.Fatalf("a replacement that never became healthy: verdict %+v", st)
		}
	})
	t.Run("crash after running a while", func(t *testing.T) {
		w := newWorld(t)
		w.node("n1")
		w.up(&types.App{Name: "a", Services: []*types.Service{service("web", 1)}})
		w.step()
		cur := current(w.tasks("a", "web"))
		w.report(cur.ID, types.TaskStatus{State: types.TaskRunning, StartedAt: w.clock.Now()})
		w.clock.Advance(time.Minute)
		w.report(cur.ID, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(1), FinishedAt: w.clock.Now()})
		w.step()
		w.clock.Advance(time.Second)
		w.step()
		w.crash("a", "web", 1) // the restart fails at once: one crash of a replica never up
		w.step()
		wantState(t, w.status("a", "web"), types.ServiceConverging)
		w.clock.Advance(time.Second)
		w.step()
		w.crash("a", "web", 1) // and again: a crash loop
		w.step()
		wantState(t, w.status("a", "web"), types.ServiceFailed)
	})
	t.Run("no restart after serving is failed", func(t *testing.T) {
		w := newWorld(t)
		w.node("n1")
		job := service("job", 1)
		job.RestartPolicy.Condition = types.RestartNone
		w.up(&types.App{Name: "a", Services: []*types.Service{job}})
		w.step()
		cur := current(w.tasks("a", "job"))
		w.report(cur.ID, types.TaskStatus{State: types.TaskRunning, StartedAt: w.clock.Now()})
		w.clock.Advance(time.Minute)
		w.report(cur.ID, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(2), FinishedAt: w.clock.Now()})
		w.step()
		wantState(t, w.status("a", "job"), types.ServiceFailed) // nothing will mend it
	})
}
