package types

import (
	"testing"
	"time"
)

func TestHealthcheckEnabled(t *testing.T) {
	tests := []struct {
		name              string
		hc                *Healthcheck
		enabled, disabled bool
	}{
		{"none given", nil, false, false},
		{"a probe", &Healthcheck{Test: []string{"CMD", "true"}}, true, false},
		{"shell probe", &Healthcheck{Test: []string{"CMD-SHELL", "true"}}, true, false},
		{"NONE from the API", &Healthcheck{Test: []string{"NONE"}}, false, true},
		{"none in lower case", &Healthcheck{Test: []string{"none"}}, false, true},
		{"disable", &Healthcheck{Test: []string{"CMD", "true"}, Disable: true}, false, true},
		{"only tuning the image's check", &Healthcheck{Interval: time.Second}, false, false},
	}
	for _, tc := range tests {
		if got := tc.hc.Enabled(); got != tc.enabled {
			t.Errorf("%s: Enabled = %v, want %v", tc.name, got, tc.enabled)
		}
		if got := tc.hc.Disabled(); got != tc.disabled {
			t.Errorf("%s: Disabled = %v, want %v", tc.name, got, tc.disabled)
		}
	}
}

func TestTaskHealthyAndUp(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	checked := &Service{Healthcheck: &Healthcheck{Test: []string{"CMD", "true"}}}
	noneCheck := &Service{Healthcheck: &Healthcheck{Test: []string{"NONE"}}}
	plain := &Service{}
	long, short := now.Add(-time.Minute), now.Add(-time.Second)
	tests := []struct {
		name    string
		svc     *Service
		task    Task
		healthy bool
		up      bool
	}{
		{"running, no check, long", plain, Task{State: TaskRunning, StartedAt: long}, true, true},
		{"running, no check, just started", plain, Task{State: TaskRunning, StartedAt: short}, true, false},
		{"check not yet passed", checked, Task{State: TaskRunning, StartedAt: long}, false, false},
		{"check starting", checked, Task{State: TaskRunning, Health: HealthStarting, StartedAt: long}, false, false},
		{"check passed: up at once", checked, Task{State: TaskRunning, Health: HealthHealthy, StartedAt: short}, true, true},
		{"unhealthy", checked, Task{State: TaskRunning, Health: HealthUnhealthy, StartedAt: long}, false, false},
		{"NONE never blocks", noneCheck, Task{State: TaskRunning, StartedAt: long}, true, true},
		{"image's own check reported", plain, Task{State: TaskRunning, Health: HealthStarting, StartedAt: long}, false, false},
		{"not running", plain, Task{State: TaskComplete, StartedAt: long}, false, false},
	}
	for _, tc := range tests {
		if got := tc.task.Healthy(tc.svc); got != tc.healthy {
			t.Errorf("%s: Healthy = %v, want %v", tc.name, got, tc.healthy)
		}
		up, at := tc.task.Up(tc.svc, now)
		if up != tc.up {
			t.Errorf("%s: Up = %v, want %v", tc.name, up, tc.up)
		}
		if !up && tc.healthy && !at.Equal(short.Add(MonitorPeriod)) {
			t.Errorf("%s: up at %v, want %v", tc.name, at, short.Add(MonitorPeriod))
		}
	}
}

func TestHoldsResources(t *testing.T) {
	tests := []struct {
		task Task
		want bool
	}{
		{Task{State: TaskPending}, false},
		{Task{State: TaskPending, NodeID: "n1"}, false}, // global: node chosen, not placed
		{Task{State: TaskAssigned, NodeID: "n1"}, true},
		{Task{State: TaskRunning, NodeID: "n1", DesiredState: DesiredShutdown}, true},
		{Task{State: TaskFailed, NodeID: "n1"}, false},
	}
	for _, tc := range tests {
		if got := tc.task.HoldsResources(); got != tc.want {
			t.Errorf("%s on %q: HoldsResources = %v, want %v", tc.task.State, tc.task.NodeID, got, tc.want)
		}
	}
}

func TestWillRestart(t *testing.T) {
	now := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	failed := func(attempt int, created time.Time) *Task {
		return &Task{State: TaskFailed, Attempt: attempt, CreatedAt: created}
	}
	old, recent := now.Add(-time.Hour), now.Add(-time.Second)
	tests := []struct {
		name    string
		pol     RestartPolicy
		cur     *Task
		history []*Task
		want    bool
	}{
		{"on-failure: a crash", RestartPolicy{Condition: RestartOnFailure}, failed(0, recent), nil, true},
		{"default is on-failure", RestartPolicy{}, failed(0, recent), nil, true},
		{"on-failure: done", RestartPolicy{Condition: RestartOnFailure}, &Task{State: TaskComplete}, nil, false},
		{"any: done", RestartPolicy{Condition: RestartAny}, &Task{State: TaskComplete}, nil, true},
		{"none", RestartPolicy{Condition: RestartNone}, failed(0, recent), nil, false},
		{"none: lost", RestartPolicy{Condition: RestartNone}, &Task{State: TaskLost}, nil, true},
		{"max attempts used", RestartPolicy{Condition: RestartOnFailure, MaxAttempts: 2}, failed(2, recent), nil, false},
		{"max attempts left", RestartPolicy{Condition: RestartOnFailure, MaxAttempts: 3}, failed(2, recent), nil, true},
		{"window: old restarts do not count", RestartPolicy{Condition: RestartOnFailure, MaxAttempts: 2, Window: time.Minute},
			failed(5, recent), []*Task{failed(3, old), failed(4, old), failed(5, recent)}, true},
		{"window: recent restarts count", RestartPolicy{Condition: RestartOnFailure, MaxAttempts: 2, Window: time.Minute},
			failed(5, recent), []*Task{failed(3, old), failed(4, recent), failed(5, recent)}, false},
	}
	for _, tc := range tests {
		if got := tc.pol.WillRestart(tc.cur, tc.history, now); got != tc.want {
			t.Errorf("%s: WillRestart = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTaskWasUp(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	checked := &Service{Healthcheck: &Healthcheck{Test: []string{"CMD", "true"}}}
	plain := &Service{}
	now := t0.Add(time.Hour)
	tests := []struct {
		name string
		svc  *Service
		task Task
		want bool
	}{
		{"crashed at once", plain, Task{State: TaskFailed, StartedAt: t0, FinishedAt: t0.Add(10 * time.Millisecond)}, false},
		{"crashed after a minute", plain, Task{State: TaskFailed, StartedAt: t0, FinishedAt: t0.Add(time.Minute)}, true},
		{"never started", plain, Task{State: TaskRejected}, false},
		{"still running for long", plain, Task{State: TaskRunning, StartedAt: t0}, true},
		{"check never passed", checked, Task{State: TaskRunning, Health: HealthUnhealthy, StartedAt: t0}, false},
		{"check passed once", checked, Task{State: TaskRunning, Health: HealthUnhealthy, StartedAt: t0, HealthyAt: t0.Add(time.Second)}, true},
		{"image's check never passed", plain, Task{State: TaskFailed, Health: HealthStarting, StartedAt: t0, FinishedAt: t0.Add(time.Minute)}, false},
	}
	for _, tc := range tests {
		if got := tc.task.WasUp(tc.svc, now); got != tc.want {
			t.Errorf("%s: WasUp = %v, want %v", tc.name, got, tc.want)
		}
	}
}
