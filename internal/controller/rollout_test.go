package controller

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// agentBehaviour is how the fake agent runs a version's tasks.
type agentBehaviour struct {
	crash map[uint64]bool // versions whose tasks exit 1 crashAfter their start
	// crashAfter is when (default a second); past types.MonitorPeriod the
	// task was up, and may have started the delay before the next step.
	crashAfter time.Duration
	// stopAfter is how long a task told to stop takes to end (its drain
	// delay and stop grace), counted from the first act that saw it told;
	// stopping (made by act) keeps when that was.
	stopAfter time.Duration
	stopping  map[string]time.Time
}

// act plays the agents once: assigned tasks start, stopping ones stop, and
// crashing versions exit a second after their start. It calls observe after
// each report.
func (w *world) act(app, svc string, b agentBehaviour, observe func()) {
	w.t.Helper()
	for _, t := range w.tasks(app, svc) {
		switch {
		case t.DesiredState == types.DesiredShutdown && !t.State.Terminal():
			if b.stopAfter > 0 {
				told, seen := b.stopping[t.ID]
				if !seen {
					b.stopping[t.ID] = w.clock.Now()
				}
				if !seen || w.clock.Now().Sub(told) < b.stopAfter {
					continue
				}
			}
			w.report(t.ID, types.TaskStatus{State: types.TaskShutdown, FinishedAt: w.clock.Now()})
		case t.DesiredState == types.DesiredRunning && t.State == types.TaskAssigned:
			w.report(t.ID, types.TaskStatus{State: types.TaskRunning, StartedAt: w.clock.Now()})
		case t.State == types.TaskRunning && b.crash[t.ServiceVersion] && w.clock.Now().Sub(t.StartedAt) >= max(b.crashAfter, time.Second):
			w.report(t.ID, types.TaskStatus{State: types.TaskFailed, ExitCode: exitCode(1), FinishedAt: w.clock.Now()})
		default:
			continue
		}
		observe()
	}
}

// running counts the service's tasks that run: serving (wanted), and all.
func (w *world) running(app, svc string) (serving, all int) {
	for _, t := range w.tasks(app, svc) {
		if t.State == types.TaskRunning {
			all++
			if t.DesiredState == types.DesiredRunning {
				serving++
			}
		}
	}
	return serving, all
}

func (w *world) deployment(app, svc string, v uint64) *types.Deployment {
	w.t.Helper()
	d := w.store.View().CurrentDeployment(app, svc, v)
	if d == nil {
		w.t.Fatalf("no deployment of %s/%s version %d", app, svc, v)
	}
	return d
}

// roll runs the world (steps, agents, half a second a round) until the
// deployment of version v of web is final, and returns it with the fewest
// serving and the most running tasks seen.
func (w *world) roll(v uint64, b agentBehaviour) (d *types.Deployment, minServing, maxRunning int) {
	w.t.Helper()
	minServing = 1 << 30
	observe := func() {
		s, a := w.running("a", "web")
		minServing, maxRunning = min(minServing, s), max(maxRunning, a)
	}
	for range 400 {
		w.step()
		observe()
		if d = w.deployment("a", "web", v); !d.State.Live() || d.State == types.DeploymentPaused {
			return d, minServing, maxRunning
		}
		w.act("a", "web", b, observe)
		w.clock.Advance(500 * time.Millisecond)
	}
	w.t.Fatalf("deployment of version %d did not end: %+v", v, w.deployment("a", "web", v))
	return nil, 0, 0
}

// startApp runs version 1 of web (replicas, cfg) until its deployment
// succeeded, then submits version 2 (a new env).
func startApp(t *testing.T, replicas int, cfg *types.UpdateConfig) *world {
	w := newWorld(t)
	w.node("n1")
	web := service("web", replicas)
	web.UpdateConfig = cfg
	web.RestartPolicy = types.RestartPolicy{Condition: types.RestartAny}
	w.up(&types.App{Name: "a", Services: []*types.Service{web}})
	if d, _, _ := w.roll(1, agentBehaviour{}); d.State != types.DeploymentSucceeded {
		t.Fatalf("version 1: %+v", d)
	}
	web2 := *web
	web2.Env = map[string]string{"V": "2"}
	w.up(&types.App{Name: "a", Services: []*types.Service{&web2}})
	return w
}

func TestRolloutOrderBounds(t *testing.T) {
	cases := []struct {
		order       string
		parallelism int
	}{
		{types.OrderStopFirst, 1}, {types.OrderStopFirst, 2}, {types.OrderStartFirst, 1}, {types.OrderStartFirst, 2},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.order, tc.parallelism), func(t *testing.T) {
			const replicas = 4
			w := startApp(t, replicas, &types.UpdateConfig{Parallelism: new(tc.parallelism), Order: tc.order})
			// Old tasks take a while to stop, as they drain: the next step
			// waits for them, or start-first runs more than parallelism
			// extra.
			d, minServing, maxRunning := w.roll(2, agentBehaviour{stopAfter: 1500 * time.Millisecond, stopping: map[string]time.Time{}})
			if d.State != types.DeploymentSucceeded || d.Updated != replicas || d.Healthy != replicas || d.Total != replicas {
				t.Fatalf("deployment: %+v", d)
			}
			lo, hi := replicas-tc.parallelism, replicas
			if tc.order == types.OrderStartFirst {
				lo, hi = replicas, replicas+tc.parallelism
			}
			if minServing < lo || maxRunning > hi {
				t.Errorf("serving went down to %d (floor %d), running up to %d (ceiling %d)", minServing, lo, maxRunning, hi)
			}
			if maxRunning <= replicas && tc.order == types.OrderStartFirst || minServing >= replicas && tc.order == types.OrderStopFirst {
				t.Errorf("the order made no difference: serving down to %d, running up to %d", minServing, maxRunning)
			}
			for _, tk := range w.tasks("a", "web") {
				if tk.DesiredState == types.DesiredRunning && tk.ServiceVersion != 2 {
					t.Errorf("task %s still wanted at version %d", tk.ID, tk.ServiceVersion)
				}
			}
		})
	}
}

func TestRolloutFailure(t *testing.T) {
	cases := []struct {
		action    string
		delay     time.Duration // longer than monitor: the failure still counts (moby/moby#37972)
		state     types.DeploymentState
		oldKept   int // replicas of version 1 never touched
		wantFinal func(t *testing.T, w *world)
	}{
		{types.FailurePause, 0, types.DeploymentPaused, 3, nil},
		{types.FailurePause, time.Minute, types.DeploymentPaused, 3, nil},
		{types.FailureContinue, 0, types.DeploymentFailed, 0, nil},
		{types.FailureRollback, time.Minute, types.DeploymentRolledBack, 3, func(t *testing.T, w *world) {
			svc := w.store.View().App("a").Service("web")
			if svc.Version != 3 || svc.Env["V"] != "" {
				t.Fatalf("rolled back to version %d env %v", svc.Version, svc.Env)
			}
			d, _, _ := w.roll(3, agentBehaviour{crash: map[uint64]bool{2: true}})
			if d.State != types.DeploymentSucceeded || !d.Rollback {
				t.Fatalf("rollback deployment: %+v", d)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/delay=%s", tc.action, tc.delay), func(t *testing.T) {
			w := startApp(t, 4, &types.UpdateConfig{FailureAction: tc.action, Delay: tc.delay})
			old := map[string]bool{}
			for _, tk := range w.tasks("a", "web") {
				old[tk.ID] = true
			}
			// With a delay, the replica crashes once up (the delay under
			// way) but within monitor.
			crashAfter := time.Duration(0)
			if tc.delay > 0 {
				crashAfter = types.MonitorPeriod + time.Second
			}
			d, _, _ := w.roll(2, agentBehaviour{crash: map[uint64]bool{2: true}, crashAfter: crashAfter})
			if d.State != tc.state {
				t.Fatalf("deployment ended %s (%s), want %s", d.State, d.Reason, tc.state)
			}
			code := types.ReasonFailureRatio
			if tc.action == types.FailureContinue {
				code = types.ReasonReplicas
			}
			if d.ReasonCode != code || !strings.Contains(d.Reason, "exited with code 1") {
				t.Errorf("reason %s: %s", d.ReasonCode, d.Reason)
			}
			kept := 0
			for _, tk := range w.tasks("a", "web") {
				if old[tk.ID] && tk.DesiredState == types.DesiredRunning {
					kept++
				}
			}
			if kept != tc.oldKept {
				t.Errorf("%d replicas of version 1 kept, want %d", kept, tc.oldKept)
			}
			if tc.wantFinal != nil {
				tc.wantFinal(t, w)
			}
		})
	}
}

// A new controller (the next leader) carries a rollout on from the record:
// the delay a step started stays in force, and the rollout ends.
func TestRolloutResumesOnNewLeader(t *testing.T) {
	w := startApp(t, 3, &types.UpdateConfig{Delay: time.Minute})
	for range 20 {
		w.step()
		w.act("a", "web", agentBehaviour{}, func() {})
		w.clock.Advance(time.Second)
		if d := w.deployment("a", "web", 2); !d.NextStepAt.IsZero() {
			break
		}
	}
	d := w.deployment("a", "web", 2)
	if d.NextStepAt.IsZero() || d.Updated != 1 || d.Healthy != 1 {
		t.Fatalf("first step not up with its delay recorded: %+v", d)
	}
	w.rec = NewReconciler(w.store, w, w, w.clock, nil) // the next leader
	w.rec.NewID = func() string { w.ids++; return fmt.Sprintf("n%03d", w.ids) }
	wake := w.step()
	if d := w.deployment("a", "web", 2); d.Updated != 1 || !wake.Equal(d.NextStepAt) {
		t.Fatalf("the new leader did not wait for the delay (wake %v): %+v", wake, d)
	}
	w.clock.Advance(time.Minute)
	if d, _, _ := w.roll(2, agentBehaviour{}); d.State != types.DeploymentSucceeded || d.Healthy != 3 {
		t.Fatalf("after the new leader: %+v", d)
	}
}

// Canaries: the first replicas roll, then the rest wait for a promotion:
// their own (auto_promote, after monitor) or berth deploy promote's.
func TestRolloutCanary(t *testing.T) {
	for _, auto := range []bool{true, false} {
		t.Run(fmt.Sprintf("auto_promote=%v", auto), func(t *testing.T) {
			w := newWorld(t)
			w.node("n1")
			web := service("web", 4)
			web.Canary = &types.Canary{Count: 2, AutoPromote: auto}
			w.up(&types.App{Name: "a", Services: []*types.Service{web}})
			w.roll(1, agentBehaviour{})
			web2 := *web
			web2.Env = map[string]string{"V": "2"}
			w.up(&types.App{Name: "a", Services: []*types.Service{&web2}})
			d, _, _ := w.roll(2, agentBehaviour{})
			if auto {
				if d.State != types.DeploymentSucceeded || !d.Promoted {
					t.Fatalf("auto-promoted deployment: %+v", d)
				}
				return
			}
			if d.State != types.DeploymentPaused || d.ReasonCode != types.ReasonPromotion || d.Updated != 2 || d.Healthy != 2 ||
				!strings.Contains(d.Reason, "2 canaries of version 2 are up; promote with berth deploy promote web") {
				t.Fatalf("deployment awaiting promotion: %+v", d)
			}
			for range 10 { // nothing more rolls while it waits
				w.step()
				w.clock.Advance(time.Second)
			}
			if d := w.deployment("a", "web", 2); d.Updated != 2 || d.State != types.DeploymentPaused {
				t.Fatalf("rolled on before the promotion: %+v", d)
			}
			w.must(&state.PromoteDeployment{ID: d.ID, Now: w.clock.Now()})
			if d, _, _ := w.roll(2, agentBehaviour{}); d.State != types.DeploymentSucceeded || d.Healthy != 4 {
				t.Fatalf("after the promotion: %+v", d)
			}
		})
	}
}

// A deployment not done within its progress_deadline fails by its
// failure_action (here: paused), with the reason.
func TestRolloutProgressDeadline(t *testing.T) {
	w := startApp(t, 2, nil)
	app := w.store.View().App("a")
	web := *app.Service("web")
	web.Env = map[string]string{"V": "3"}
	web.Canary = &types.Canary{ProgressDeadline: 10 * time.Second}
	w.up(&types.App{Name: "a", Services: []*types.Service{&web}})
	// Its replicas never start: the agent does nothing.
	for range 30 {
		w.step()
		w.clock.Advance(time.Second)
	}
	d := w.deployment("a", "web", 3)
	if d.State != types.DeploymentPaused || d.ReasonCode != types.ReasonDeadline || !strings.Contains(d.Reason, "progress_deadline 10s") {
		t.Fatalf("deployment past its deadline: %+v", d)
	}
}

// A global service rolls node by node like a replicated one.
func TestRolloutGlobal(t *testing.T) {
	w := newWorld(t)
	for _, n := range []string{"n1", "n2", "n3"} {
		w.node(n)
	}
	web := service("web", 0)
	web.Mode = types.ModeGlobal
	w.up(&types.App{Name: "a", Services: []*types.Service{web}})
	if d, _, _ := w.roll(1, agentBehaviour{}); d.State != types.DeploymentSucceeded || d.Total != 3 {
		t.Fatalf("version 1: %+v", d)
	}
	web2 := *web
	web2.Env = map[string]string{"V": "2"}
	w.up(&types.App{Name: "a", Services: []*types.Service{&web2}})
	d, minServing, maxRunning := w.roll(2, agentBehaviour{})
	if d.State != types.DeploymentSucceeded || d.Healthy != 3 || minServing < 2 || maxRunning > 3 {
		t.Fatalf("version 2: %+v (serving down to %d, running up to %d)", d, minServing, maxRunning)
	}
}
