package controller

import (
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// Backoff bounds for restarts without an explicit delay: like the Docker
// engine's, doubling from 100ms to 10s, and starting over once a task ran
// for backoffReset.
const (
	backoffBase  = 100 * time.Millisecond
	backoffMax   = 10 * time.Second
	backoffReset = 10 * time.Second
)

// restartDecision says whether the finished (or unhealthy) current task of a
// slot is replaced now, later (at), or never (both zero).
type restartDecision struct {
	now bool
	at  time.Time
}

// decideRestart applies a restart policy to the slot's current task.
//   - lost tasks (their node went down) are always replaced, at once;
//   - condition none: never; on-failure: unless the task completed (exit 0);
//     any: always;
//   - max_attempts restarts at most (within window, when one is set);
//   - after delay, or an exponential backoff when no delay is given.
func decideRestart(pol types.RestartPolicy, cur *types.Task, history []*types.Task, now time.Time) restartDecision {
	if cur.State == types.TaskLost {
		return restartDecision{now: true}
	}
	if !wantsRestart(pol.Condition, cur) {
		return restartDecision{}
	}
	if pol.MaxAttempts > 0 && restartsInWindow(pol.Window, cur, history, now) >= pol.MaxAttempts {
		return restartDecision{}
	}
	if !cur.State.Terminal() {
		// Unhealthy and still running: replace it now; waiting would keep
		// a broken replica in service.
		return restartDecision{now: true}
	}
	due := cur.FinishedAt.Add(restartDelay(pol, cur))
	if cur.FinishedAt.IsZero() {
		due = now
	}
	if !now.Before(due) {
		return restartDecision{now: true}
	}
	return restartDecision{at: due}
}

func wantsRestart(condition string, cur *types.Task) bool {
	switch condition {
	case types.RestartNone:
		return false
	case types.RestartAny:
		return true
	default: // on-failure, berth's default
		return cur.State != types.TaskComplete
	}
}

// restartsInWindow counts the restarts that count against max_attempts.
// Without a window that is the slot's attempt number; with one, the tasks of
// the slot started within the window, each one a restart except the first.
func restartsInWindow(window time.Duration, cur *types.Task, history []*types.Task, now time.Time) int {
	if window <= 0 {
		return cur.Attempt
	}
	n := 0
	for _, t := range history {
		if t.Attempt > 0 && !t.CreatedAt.Before(now.Add(-window)) {
			n++
		}
	}
	return n
}

func restartDelay(pol types.RestartPolicy, cur *types.Task) time.Duration {
	if pol.Delay > 0 {
		return pol.Delay
	}
	if !cur.StartedAt.IsZero() && !cur.FinishedAt.IsZero() && cur.FinishedAt.Sub(cur.StartedAt) >= backoffReset {
		return backoffBase
	}
	d := backoffBase
	for i := 0; i < cur.Attempt && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}
