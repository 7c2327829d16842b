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

// decideRestart applies a restart policy to the slot's current task:
// whether it is replaced at all is types.RestartPolicy.WillRestart; when is
// at once for a lost or an unhealthy task, else after the policy's delay or
// an exponential backoff when no delay is given.
func decideRestart(pol types.RestartPolicy, cur *types.Task, history []*types.Task, now time.Time) restartDecision {
	if !pol.WillRestart(cur, history, now) {
		return restartDecision{}
	}
	if cur.State == types.TaskLost || !cur.State.Terminal() {
		// Lost: its node went down. Unhealthy and still running: waiting
		// would keep a broken replica in service.
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
