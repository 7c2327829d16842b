package types

import (
	"strings"
	"time"
)

// The rules below are the only definitions of what they decide: the CLI,
// the controller, the scheduler, the plan applier and the drivers all call
// them, so "healthy" or "will restart" cannot mean two things in two places.

// Enabled reports whether the service's own healthcheck runs a probe: one
// given, not disabled (`disable: true` or a ["NONE"] test, in any case) and
// with a test. A section without a test only tunes the image's own check
// (docker driver); whether that runs shows in the health its tasks report.
func (h *Healthcheck) Enabled() bool {
	return h != nil && !h.Disabled() && len(h.Test) > 0
}

// Disabled reports whether the healthcheck is turned off outright, which
// also turns off an image's own check.
func (h *Healthcheck) Disabled() bool {
	return h != nil && (h.Disable || (len(h.Test) > 0 && strings.EqualFold(h.Test[0], "NONE")))
}

// Healthy reports whether a task of svc serves: it runs and its health
// check, if it has one, passed. A task that reports a health (the image's
// own check, on the docker driver) is judged by it; one that reports none is
// healthy unless svc defines a check, whose first result is still to come.
func (t *Task) Healthy(svc *Service) bool {
	if t.State != TaskRunning {
		return false
	}
	switch t.Health {
	case HealthHealthy:
		return true
	case HealthStarting, HealthUnhealthy:
		return false
	}
	return svc == nil || !svc.Healthcheck.Enabled()
}

// Serving reports whether a task of svc is one that DNS and the mesh send
// traffic to: it should run and it is healthy. A task told to stop leaves
// at once, before its drain delay and stop signal.
func (t *Task) Serving(svc *Service) bool {
	return t.DesiredState == DesiredRunning && t.Healthy(svc)
}

// HoldsResources reports whether a task occupies its node's resources and
// host ports: it has been placed and has not ended. Pending tasks hold
// nothing; a task being stopped holds its port until it has stopped.
func (t *Task) HoldsResources() bool {
	return t.NodeID != "" && t.State != TaskPending && !t.State.Terminal()
}

// MonitorPeriod is how long a replica without a health check must run
// before it counts as up: a process that crashes at once is reported
// running for an instant, and without the wait a crash loop would look
// converged (Swarm's update monitor, shorter). A replica with a health
// check is up when the check passes.
const MonitorPeriod = 3 * time.Second

// Up reports whether a replica of svc counts as up at now: healthy, and
// running for MonitorPeriod unless a health check vouches for it. When it is
// healthy but not yet up, at says when it will be (if it keeps running).
func (t *Task) Up(svc *Service, now time.Time) (up bool, at time.Time) {
	if !t.Healthy(svc) {
		return false, time.Time{}
	}
	if t.Health == HealthHealthy || t.StartedAt.IsZero() {
		return true, time.Time{}
	}
	at = t.StartedAt.Add(MonitorPeriod)
	if now.Before(at) {
		return false, at
	}
	return true, time.Time{}
}

// WasUp reports whether a task was up at some point of its life (see Up):
// its health check passed once or, without one, it ran for MonitorPeriod.
// A failure of a task that was up is a runtime event (the restart policy
// deals with it); failures of tasks that never were up are what makes a
// deploy fail.
func (t *Task) WasUp(svc *Service, now time.Time) bool {
	switch {
	case !t.HealthyAt.IsZero():
		return true
	case t.Health != HealthNone || (svc != nil && svc.Healthcheck.Enabled()), t.StartedAt.IsZero():
		return false
	}
	end := t.FinishedAt
	if end.IsZero() {
		end = now
	}
	return end.Sub(t.StartedAt) >= MonitorPeriod
}

// WillRestart reports whether the restart policy replaces the slot's
// current task cur, which has finished or turned unhealthy; history is every
// task the slot still has. A lost task (its node went down) is always
// replaced. Otherwise: condition none never restarts, any always does,
// on-failure (the default) unless the task completed; and at most
// MaxAttempts restarts, counted within Window when one is set.
func (p RestartPolicy) WillRestart(cur *Task, history []*Task, now time.Time) bool {
	if cur.State == TaskLost {
		return true
	}
	switch p.Condition {
	case RestartNone:
		return false
	case RestartAny:
	default:
		if cur.State == TaskComplete {
			return false
		}
	}
	return p.MaxAttempts == 0 || p.restarts(cur, history, now) < p.MaxAttempts
}

// restarts counts the restarts that count against MaxAttempts. Without a
// window that is the slot's attempt number; with one, the tasks of the slot
// created within the window, each one a restart except the first.
func (p RestartPolicy) restarts(cur *Task, history []*Task, now time.Time) int {
	if p.Window <= 0 {
		return cur.Attempt
	}
	n := 0
	for _, t := range history {
		if t.Attempt > 0 && !t.CreatedAt.Before(now.Add(-p.Window)) {
			n++
		}
	}
	return n
}
