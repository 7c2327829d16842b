package cli

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

func intp(i int) *int { return &i }

// task builds a task of app "hello"; the options fill in the rest.
func task(svc string, slot int, version uint64, state types.TaskState, opts ...func(*types.Task)) *types.Task {
	t := &types.Task{
		ID: svc + "-" + string(rune('0'+slot)) + "-" + string(state), App: "hello", Service: svc, Slot: slot,
		ServiceVersion: version, DesiredState: types.DesiredRunning, State: state, NodeID: "node1",
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

func withHealth(h types.Health) func(*types.Task) { return func(t *types.Task) { t.Health = h } }
func withExit(c int) func(*types.Task)            { return func(t *types.Task) { t.ExitCode = intp(c) } }
func withAttempt(a int) func(*types.Task)         { return func(t *types.Task) { t.Attempt = a } }
func withPending(r string) func(*types.Task)      { return func(t *types.Task) { t.PendingReason = r } }
func withDesired(s types.TaskState) func(*types.Task) {
	return func(t *types.Task) { t.DesiredState = s }
}
func withNode(n string) func(*types.Task) { return func(t *types.Task) { t.NodeID = n; t.Slot = 0 } }

func svc(name string, replicas int, version uint64, opts ...func(*types.Service)) *types.Service {
	s := &types.Service{Name: name, Mode: types.ModeReplicated, Replicas: replicas, Version: version,
		RestartPolicy: types.RestartPolicy{Condition: types.RestartOnFailure}}
	for _, o := range opts {
		o(s)
	}
	return s
}

func withRestart(cond string, maxAttempts int) func(*types.Service) {
	return func(s *types.Service) {
		s.RestartPolicy = types.RestartPolicy{Condition: cond, MaxAttempts: maxAttempts}
	}
}

func withCheck() func(*types.Service) {
	return func(s *types.Service) { s.Healthcheck = &types.Healthcheck{Test: []string{"CMD", "true"}} }
}

func global() func(*types.Service) { return func(s *types.Service) { s.Mode = types.ModeGlobal } }

// judged gives a service the controller's verdict on a version.
func judged(state types.ServiceState, version uint64, reason string) func(*types.Service) {
	return func(s *types.Service) {
		s.Status = &types.ServiceStatus{Version: version, State: state, Reason: reason}
	}
}

func up() func(*types.Service) { return judged(types.ServiceUp, 1, "") }

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name     string
		services []*types.Service
		tasks    []*types.Task
		want     deployState
		reason   string // the reason, for failed and stalled
		summary  string // summary of the first service, when given
	}{
		{
			name:     "verdict up",
			services: []*types.Service{svc("web", 2, 1, up())},
			tasks:    []*types.Task{task("web", 1, 1, types.TaskRunning), task("web", 2, 1, types.TaskRunning)},
			want:     deployDone,
			summary:  "2/2 running",
		},
		{
			// The crash-loop bug: every replica reported running for an
			// instant was taken for done. Only the controller's verdict is.
			name:     "all running but not judged up yet",
			services: []*types.Service{svc("crash", 1, 1)},
			tasks:    []*types.Task{task("crash", 1, 1, types.TaskRunning)},
			want:     deployWaiting,
			summary:  "1/1 running",
		},
		{
			name:     "a verdict on an older version means nothing",
			services: []*types.Service{svc("web", 1, 2, judged(types.ServiceUp, 1, ""))},
			tasks:    []*types.Task{task("web", 1, 1, types.TaskRunning), task("web", 1, 2, types.TaskAssigned)},
			want:     deployWaiting,
		},
		{
			name:     "replica not created yet",
			services: []*types.Service{svc("web", 3, 1)},
			tasks:    []*types.Task{task("web", 1, 1, types.TaskRunning), task("web", 2, 1, types.TaskStarting)},
			want:     deployWaiting,
			summary:  "1/3 running  (2 starting)",
		},
		{
			name:     "healthcheck not passed yet shows as starting",
			services: []*types.Service{svc("web", 1, 1, withCheck())},
			tasks:    []*types.Task{task("web", 1, 1, types.TaskRunning, withHealth(types.HealthStarting))},
			want:     deployWaiting,
			summary:  "0/1 running  (1 starting)",
		},
		{
			name: "one-shot completed",
			services: []*types.Service{svc("migrate", 1, 1, withRestart(types.RestartNone, 0), up()),
				svc("web", 1, 1, up())},
			tasks: []*types.Task{
				task("migrate", 1, 1, types.TaskComplete, withExit(0)),
				task("web", 1, 1, types.TaskRunning),
			},
			want:    deployDone,
			summary: "1/1 completed",
		},
		{
			name:     "restart any: a completed task shows as restarting",
			services: []*types.Service{svc("web", 1, 1, withRestart(types.RestartAny, 0))},
			tasks:    []*types.Task{task("web", 1, 1, types.TaskComplete, withExit(0))},
			want:     deployWaiting,
			summary:  "0/1 running  (1 starting)",
		},
		{
			name: "verdict failed",
			services: []*types.Service{svc("crash", 1, 1, judged(types.ServiceFailed, 1,
				"replica hello-crash-1 crash-loops: it exited with code 1 again"))},
			tasks:  []*types.Task{task("crash", 1, 1, types.TaskRunning, withAttempt(2))},
			want:   deployFailed,
			reason: "service crash: replica hello-crash-1 crash-loops: it exited with code 1 again",
		},
		{
			name: "the failed service is named, whatever its place",
			services: []*types.Service{svc("api", 1, 1),
				svc("db", 1, 1, judged(types.ServiceFailed, 1, "replica hello-db-1 is unhealthy"))},
			tasks: []*types.Task{task("api", 1, 1, types.TaskPending, withPending("waiting for db to be healthy")),
				task("db", 1, 1, types.TaskRunning, withHealth(types.HealthUnhealthy))},
			want:   deployFailed,
			reason: "service db: replica hello-db-1 is unhealthy",
		},
		{
			name:     "pending with a reason and nothing else moving",
			services: []*types.Service{svc("web", 3, 1)},
			tasks: []*types.Task{
				task("web", 1, 1, types.TaskRunning),
				task("web", 2, 1, types.TaskPending, withPending("0/1 nodes available: 1 port 8080/tcp in use")),
				task("web", 3, 1, types.TaskPending, withPending("0/1 nodes available: 1 port 8080/tcp in use")),
			},
			want:   deployStalled,
			reason: "service web: 2 of 3 replicas cannot be placed: 0/1 nodes available: 1 port 8080/tcp in use",
		},
		{
			name:     "pending while an old task is still stopping",
			services: []*types.Service{svc("web", 1, 2)},
			tasks: []*types.Task{
				task("web", 1, 1, types.TaskRunning, withDesired(types.DesiredShutdown)),
				task("web", 1, 2, types.TaskPending, withPending("port 8080/tcp in use")),
			},
			want: deployWaiting,
		},
		{
			name:     "pending while another service still starts",
			services: []*types.Service{svc("web", 1, 1), svc("db", 1, 1)},
			tasks: []*types.Task{
				task("web", 1, 1, types.TaskPending, withPending("no memory")),
				task("db", 1, 1, types.TaskStarting),
			},
			want: deployWaiting,
		},
		{
			name:     "pending without a reason is the scheduler not done yet",
			services: []*types.Service{svc("web", 1, 1)},
			tasks:    []*types.Task{task("web", 1, 1, types.TaskPending)},
			want:     deployWaiting,
		},
		{
			name:     "scale down: slots beyond replicas are ignored",
			services: []*types.Service{svc("web", 1, 1, up())},
			tasks: []*types.Task{
				task("web", 1, 1, types.TaskRunning),
				task("web", 2, 1, types.TaskRunning, withDesired(types.DesiredShutdown)),
			},
			want: deployDone,
		},
		{
			name:     "global: every task running",
			services: []*types.Service{svc("agent", 0, 1, global(), up())},
			tasks: []*types.Task{
				task("agent", 0, 1, types.TaskRunning, withNode("n1")),
				task("agent", 0, 1, types.TaskRunning, withNode("n2")),
			},
			want:    deployDone,
			summary: "2/2 running",
		},
		{
			name:     "global: one still starting",
			services: []*types.Service{svc("agent", 0, 1, global())},
			tasks: []*types.Task{
				task("agent", 0, 1, types.TaskRunning, withNode("n1")),
				task("agent", 0, 1, types.TaskStarting, withNode("n2")),
			},
			want: deployWaiting,
		},
		{
			name:     "a starting replica's pull progress shows",
			services: []*types.Service{svc("web", 2, 1)},
			tasks: []*types.Task{
				task("web", 1, 1, types.TaskRunning),
				task("web", 2, 1, types.TaskStarting, func(t *types.Task) { t.Progress = "pulling image web: 1 of 2 layers, 3 MB of 8 MB" }),
			},
			want:    deployWaiting,
			summary: "1/2 running  (1 starting: pulling image web: 1 of 2 layers, 3 MB of 8 MB)",
		},
		{
			name:     "global: no task yet",
			services: []*types.Service{svc("agent", 0, 1, global())},
			want:     deployWaiting,
		},
		{
			name:     "zero replicas is done once judged",
			services: []*types.Service{svc("web", 0, 1, up())},
			want:     deployDone,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := &types.App{Name: "hello", Services: tc.services}
			p := evaluate(app, tc.tasks)
			if p.State != tc.want {
				t.Fatalf("state = %v (%q), want %v", p.State, p.Reason, tc.want)
			}
			if tc.reason != "" && p.Reason != tc.reason {
				t.Errorf("reason = %q, want %q", p.Reason, tc.reason)
			}
			if tc.summary != "" {
				if got := p.Services[0].summary(); got != tc.summary {
					t.Errorf("summary = %q, want %q", got, tc.summary)
				}
			}
		})
	}
}

func TestProgressDisplay(t *testing.T) {
	app := &types.App{Name: "hello", Services: []*types.Service{svc("web", 2, 1), svc("db", 1, 1)}}
	steps := [][]*types.Task{
		{task("web", 1, 1, types.TaskStarting), task("db", 1, 1, types.TaskRunning)},
		{task("web", 1, 1, types.TaskStarting), task("db", 1, 1, types.TaskRunning)},
		{task("web", 1, 1, types.TaskRunning), task("web", 2, 1, types.TaskRunning), task("db", 1, 1, types.TaskRunning)},
	}
	t.Run("plain prints changes only", func(t *testing.T) {
		var b strings.Builder
		d := newProgressDisplay(&b, false, 0)
		for _, ts := range steps {
			d.update(evaluate(app, ts))
		}
		want := "web  0/2 running  (2 starting)\n" +
			"db   1/1 running\n" +
			"web  2/2 running\n"
		if b.String() != want {
			t.Errorf("output:\n%s\nwant:\n%s", b.String(), want)
		}
	})
	t.Run("terminal redraws in place", func(t *testing.T) {
		var b strings.Builder
		d := newProgressDisplay(&b, true, 20)
		d.update(evaluate(app, steps[0]))
		d.update(evaluate(app, steps[1])) // unchanged: no redraw
		d.update(evaluate(app, steps[2]))
		// Lines are cut to the 20-column terminal, so none wraps.
		want := "\x1b[2Kweb  0/2 running  (\n\x1b[2Kdb   1/1 running\n" +
			"\x1b[2A\x1b[2Kweb  2/2 running\n\x1b[2Kdb   1/1 running\n"
		if b.String() != want {
			t.Errorf("output %q, want %q", b.String(), want)
		}
	})
}
