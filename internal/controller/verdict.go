package controller

import (
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// A verdict is the controller's judgement of a service's current version,
// stored as types.Service.Status so that `up`, `scale` and `ps` (and later
// deployments) report the same thing. It is judged per replica (slot), on
// the slot's whole history at that version:
//
//   - up: the current task is up (types.Task.Up), or a one-shot completed
//     and is not restarted. Up wins: a replica that works now is not failed
//     for what it did before;
//   - failed: a task of the version that never was up was rejected by its
//     driver, or turned unhealthy (its check failed Retries times after its
//     start period), or two exited non-zero (the restart policy brought the
//     replica back and it failed again); or the current task exited
//     non-zero, or is unhealthy, with no restart to come;
//   - converging: anything else (starting, restarting once, waiting for a
//     dependency or for room).
//
// A service is failed when one replica is, up when all are.

// slotVerdict is the judgement of one replica.
type slotVerdict struct {
	state  types.ServiceState
	reason string      // failed: what happened, naming the replica
	task   *types.Task // failed: the task that shows it
	wake   time.Time   // converging: when the replica will be up if it keeps running
}

// judgeSlot judges one replica from every task its slot still has.
func judgeSlot(svc *types.Service, history []*types.Task, now time.Time) slotVerdict {
	cur := current(history)
	if cur != nil && cur.ServiceVersion == svc.Version {
		up, at := cur.Up(svc, now)
		switch {
		case up:
			return slotVerdict{state: types.ServiceUp}
		case cur.State == types.TaskComplete && !svc.RestartPolicy.WillRestart(cur, history, now):
			return slotVerdict{state: types.ServiceUp}
		}
		if v, failed := slotFailure(svc, cur, history, now); failed {
			return v
		}
		return slotVerdict{state: types.ServiceConverging, wake: at}
	}
	// No task of this version yet: a replacement is on its way. Tasks of
	// this version that already ended still count against it.
	if v, failed := slotFailure(svc, nil, history, now); failed {
		return v
	}
	return slotVerdict{state: types.ServiceConverging}
}

// slotFailure looks for a failure of the service's current version that
// waiting will not mend. The current task counts if nothing will replace
// it (it exited non-zero, or is unhealthy, and the restart policy says no).
// Otherwise only tasks that never were up (types.Task.WasUp) count, newest
// first: one rejected, one unhealthy, or two that exited non-zero (a crash
// loop). A replica that served and then failed is the restart policy's
// business, not a failed deploy.
func slotFailure(svc *types.Service, cur *types.Task, history []*types.Task, now time.Time) (slotVerdict, bool) {
	if cur != nil && !svc.RestartPolicy.WillRestart(cur, history, now) {
		switch {
		case cur.State == types.TaskFailed:
			return failed(cur, fmt.Sprintf("replica %s exited with %s and %s", cur.Name(), exitText(cur), noRestartText(svc.RestartPolicy, cur))), true
		case cur.State == types.TaskRunning && cur.Health == types.HealthUnhealthy:
			return failed(cur, fmt.Sprintf("replica %s is unhealthy and %s", cur.Name(), noRestartText(svc.RestartPolicy, cur))), true
		}
	}
	var crashes []*types.Task
	for i := len(history) - 1; i >= 0; i-- {
		t := history[i]
		if t.ServiceVersion != svc.Version || t.WasUp(svc, now) {
			continue
		}
		switch {
		case t.State == types.TaskRejected:
			// The reason is the task's error: failed would say it twice.
			return slotVerdict{state: types.ServiceFailed, reason: fmt.Sprintf("replica %s was rejected: %s", t.Name(), orNoReason(t.Error)), task: t}, true
		case t.Health == types.HealthUnhealthy:
			return failed(t, fmt.Sprintf("replica %s is unhealthy: its health check failed %d times in a row", t.Name(), retries(svc))), true
		case t.State == types.TaskFailed:
			crashes = append(crashes, t)
		}
	}
	if len(crashes) < 2 {
		return slotVerdict{}, false
	}
	last := crashes[0]
	return failed(last, fmt.Sprintf("replica %s crash-loops: it exited with %s again after %s",
		last.Name(), exitText(last), plural(last.Attempt, "restart"))), true
}

func failed(t *types.Task, reason string) slotVerdict {
	if detail := taskDetail(t); detail != "" {
		reason += " (" + detail + ")"
	}
	return slotVerdict{state: types.ServiceFailed, reason: reason, task: t}
}

// judgeService turns the replicas' verdicts, in slot order, into the
// service's status. A service with no replica to run is up.
func judgeService(svc *types.Service, slots []slotVerdict, prev *types.ServiceStatus, now time.Time) (*types.ServiceStatus, time.Time) {
	st := &types.ServiceStatus{Version: svc.Version, State: types.ServiceUp}
	var wake time.Time
	for _, v := range slots {
		switch v.state {
		case types.ServiceFailed:
			if st.State != types.ServiceFailed {
				st.State, st.Reason, st.TaskID, st.TaskName = types.ServiceFailed, v.reason, v.task.ID, v.task.Name()
				st.ExitCode = v.task.ExitCode
				if v.task.Health == types.HealthUnhealthy {
					st.HealthOutput = v.task.HealthOutput
				}
			}
		case types.ServiceConverging:
			if st.State == types.ServiceUp {
				st.State = types.ServiceConverging
			}
			if !v.wake.IsZero() && (wake.IsZero() || v.wake.Before(wake)) {
				wake = v.wake
			}
		}
	}
	st.Since = now
	if prev.Same(st) {
		st.Since = prev.Since
	}
	return st, wake
}

func retries(svc *types.Service) int {
	if svc.Healthcheck != nil && svc.Healthcheck.Retries > 0 {
		return svc.Healthcheck.Retries
	}
	return 3 // the engines' default
}

func exitText(t *types.Task) string {
	if t.ExitCode == nil {
		return "an error"
	}
	return fmt.Sprintf("code %d", *t.ExitCode)
}

func noRestartText(rp types.RestartPolicy, t *types.Task) string {
	switch {
	case rp.Condition == types.RestartNone:
		return "its restart policy (none) does not restart it"
	case t.State == types.TaskComplete || rp.MaxAttempts == 0:
		return "its restart policy does not restart it"
	}
	return fmt.Sprintf("was given up after %s (max_attempts %d)", plural(t.Attempt, "restart"), rp.MaxAttempts)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// taskDetail is a task's error when it says more than its exit code.
func taskDetail(t *types.Task) string {
	if t.Error == "" || (t.ExitCode != nil && t.Error == fmt.Sprintf("exit code %d", *t.ExitCode)) {
		return ""
	}
	return t.Error
}

func orNoReason(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}
