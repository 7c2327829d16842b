package controller

import (
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// A changed service rolls out as its deployment says (types.Deployment,
// made by the FSM with the version): in steps of update_config.parallelism
// replicas, each step started once the one before is up (types.Task.Up, by
// way of judgeSlot) and update_config.delay has passed. stop-first stops a
// replica's old task as its new one is created; start-first keeps the old
// one serving until the new one is up (handover, drain.go).
//
// A replica of the new version fails when its verdict is failed (a crash
// loop, a rejection, a check that never passed: verdict.go) or a task of it
// failed within update_config.monitor of its start. Once more than
// max_failure_ratio of the replicas have failed, failure_action is taken:
// pause (no further step), continue (roll on; the deployment ends failed),
// rollback (state.RollbackService: the previous spec back, rolled out by
// rollback_config).
//
// Everything is judged afresh each pass from the tasks and the record, and
// the record (progress, state, when the next step may start) is written
// through Raft: a new leader carries the rollout on where the old one was.

// rolloutSlot is one replica of a service: a slot number or, in global
// mode, a node, and every task it still has.
type rolloutSlot struct {
	slot    int
	node    string
	history []*types.Task
}

// rollout is what the pass may do to a service's replicas of an older
// version.
type rollout struct {
	allow      map[int]bool // by index in the slots given to planRollout
	startFirst bool
	all        bool // no deployment to follow: replace every replica at once
}

// may reports whether replica i may be replaced now. A replica of an older
// version that does not serve anyway (ended, unhealthy) is replaced at once.
func (r *rollout) may(i int, cur *types.Task) bool {
	return r == nil || r.all || r.allow[i] || cur.State.Terminal() || cur.Health == types.HealthUnhealthy
}

// progressCount is one look at a deployment's replicas.
type progressCount struct {
	total, updated, healthy, failed, inflight int
	// stale are the indexes of replicas of an older version still serving.
	stale []int
	// failure is why the first failed replica failed (and how many more).
	failure string
	// lastStart is the newest start of a current task of the version.
	lastStart time.Time
}

// planRollout judges the service's deployment and says which replicas of
// an older version this pass replaces; the record's changes (and a
// rollback) go into p.deploys.
func (p *pass) planRollout(app *types.App, svc *types.Service, slots []rolloutSlot) *rollout {
	d := p.view.CurrentDeployment(app.Name, svc.Name, svc.Version)
	if d == nil {
		return &rollout{all: true} // a service from before deployments
	}
	cfg := d.Config.Effective()
	c := p.count(svc, d, cfg, slots)
	r := &rollout{startFirst: cfg.Order == types.OrderStartFirst, allow: map[int]bool{}}
	if !d.State.Live() {
		// Final: a replica of an older version left (none should be) is
		// replaced as a step would.
		r.all = true
		return r
	}
	set := &state.SetDeployment{ID: d.ID, State: d.State, Updated: c.updated, Healthy: c.healthy, Total: c.total,
		Failed: c.failed, NextStepAt: d.NextStepAt, Promoted: d.Promoted, ReasonCode: d.ReasonCode, Reason: d.Reason, Now: p.now}
	if d.State == types.DeploymentRunning && c.failed > 0 && float64(c.failed)/float64(max(c.total, 1)) > cfg.MaxFailureRatio {
		reason := fmt.Sprintf("%d of %d replicas of version %d failed (max_failure_ratio %g): %s",
			c.failed, c.total, svc.Version, cfg.MaxFailureRatio, c.failure)
		if p.failDeployment(set, d, cfg, types.ReasonFailureRatio, reason) {
			return r // the rollback is the next version's business
		}
	}
	if deadline := p.deadline(d); set.State == types.DeploymentRunning && !deadline.IsZero() {
		if !p.now.Before(deadline) {
			reason := fmt.Sprintf("version %d was not rolled out within its progress_deadline %s (%d of %d replicas up)",
				svc.Version, d.Canary.ProgressDeadline, c.healthy, c.total)
			if p.failDeployment(set, d, cfg, types.ReasonDeadline, reason) {
				return r
			}
			if set.State == types.DeploymentRunning { // continue: the deadline ends it
				set.State, set.ReasonCode, set.Reason = types.DeploymentFailed, types.ReasonDeadline, reason
			}
		} else {
			p.wakeAt(deadline)
		}
	}
	if set.State == types.DeploymentRunning {
		p.step(set, d, cfg, c, r)
	}
	if !sameProgress(d, set) {
		p.deploys = append(p.deploys, set)
	}
	return r
}

// failDeployment takes the failure action: a rollback (true: committed
// with the reason), a pause, or nothing (continue). A rollback with nothing
// to go back to, or of a rollback, pauses.
func (p *pass) failDeployment(set *state.SetDeployment, d *types.Deployment, cfg types.UpdateConfig, code, reason string) bool {
	switch {
	case cfg.FailureAction == types.FailureRollback && d.Previous != nil && !d.Rollback:
		p.deploys = append(p.deploys, &state.RollbackService{ID: d.ID, ReasonCode: code,
			Reason: reason + "; rolled back to version " + fmt.Sprint(d.FromVersion), Now: p.now})
		return true
	case cfg.FailureAction != types.FailureContinue:
		if cfg.FailureAction == types.FailureRollback {
			reason += "; nothing to roll back to, paused"
		}
		set.State, set.ReasonCode, set.Reason = types.DeploymentPaused, code, reason
	}
	return false
}

// deadline is when a deployment with x-berth-update.progress_deadline
// must be done (zero: none), counted from its start or its resumption.
func (p *pass) deadline(d *types.Deployment) time.Time {
	if d.Canary == nil || d.Canary.ProgressDeadline <= 0 {
		return time.Time{}
	}
	from := d.CreatedAt
	if d.ResumedAt.After(from) {
		from = d.ResumedAt
	}
	return from.Add(d.Canary.ProgressDeadline)
}

// step starts the next step when the last one is up and its delay passed,
// or ends the deployment when nothing is left to replace.
func (p *pass) step(set *state.SetDeployment, d *types.Deployment, cfg types.UpdateConfig, c progressCount, r *rollout) {
	switch {
	case c.inflight > 0:
		return // the step under way is not up yet
	case len(c.stale) == 0:
		p.finish(set, d, cfg, c)
		return
	}
	n := cfg.Step(c.total)
	if d.Canary != nil && d.Canary.Count > 0 && !set.Promoted {
		left := d.Canary.Count - c.updated
		if left <= 0 {
			p.promote(set, d, cfg, c)
			return
		}
		n = min(n, left)
	}
	switch {
	case cfg.Delay > 0 && c.healthy > d.Healthy && d.Updated > 0:
		// A step just came up: the next waits for the delay.
		set.NextStepAt = p.now.Add(cfg.Delay)
	}
	if p.now.Before(set.NextStepAt) {
		p.wakeAt(set.NextStepAt)
		return
	}
	for _, i := range c.stale[:min(n, len(c.stale))] {
		r.allow[i] = true
	}
	set.Updated += min(n, len(c.stale))
}

// promote handles canaries that are all of the new version and up or
// failed (within max_failure_ratio, or the failure action would have been
// taken): promoted once the newest ran for monitor if auto_promote is set
// and none failed, else paused for `berth deploy promote`.
func (p *pass) promote(set *state.SetDeployment, d *types.Deployment, cfg types.UpdateConfig, c progressCount) {
	if d.Canary.AutoPromote && c.failed == 0 {
		if until := c.lastStart.Add(cfg.Monitor); !c.lastStart.IsZero() && p.now.Before(until) {
			p.wakeAt(until)
			return
		}
		set.Promoted = true
		return
	}
	what := fmt.Sprintf("%d canaries of version %d are up", c.healthy, d.ToVersion)
	if c.healthy == 1 {
		what = fmt.Sprintf("1 canary of version %d is up", d.ToVersion)
	}
	if c.failed > 0 {
		what += fmt.Sprintf(" and %d failed (%s)", c.failed, c.failure)
	}
	set.State, set.ReasonCode = types.DeploymentPaused, types.ReasonPromotion
	set.Reason = fmt.Sprintf("%s; promote with berth deploy promote %s, or roll back with berth rollback %s", what, d.Service, d.Service)
}

// finish ends a deployment whose replicas are all of the new version: it
// failed if any failed (failure_action continue, or within the ratio),
// else it succeeded once the newest replica ran for monitor (an update
// only: a new service has nothing to fall back to).
func (p *pass) finish(set *state.SetDeployment, d *types.Deployment, cfg types.UpdateConfig, c progressCount) {
	if c.failed > 0 {
		set.State, set.ReasonCode = types.DeploymentFailed, types.ReasonReplicas
		set.Reason = fmt.Sprintf("%d of %d replicas of version %d failed: %s", c.failed, c.total, d.ToVersion, c.failure)
		return
	}
	if d.FromVersion != 0 && !c.lastStart.IsZero() {
		if until := c.lastStart.Add(cfg.Monitor); p.now.Before(until) {
			p.wakeAt(until)
			return
		}
	}
	set.State, set.ReasonCode, set.Reason = types.DeploymentSucceeded, "", ""
}

// count judges every replica for the deployment d of svc.
func (p *pass) count(svc *types.Service, d *types.Deployment, cfg types.UpdateConfig, slots []rolloutSlot) progressCount {
	c := progressCount{total: len(slots)}
	var reasons []string
	for i, s := range slots {
		cur := current(s.history)
		if cur != nil && cur.ServiceVersion != svc.Version && oldServing(s.history, svc) {
			c.stale = append(c.stale, i)
			continue
		}
		c.updated++
		if cur != nil && cur.ServiceVersion == svc.Version && cur.StartedAt.After(c.lastStart) {
			c.lastStart = cur.StartedAt
		}
		recent := sinceResume(s.history, d.ResumedAt)
		v := judgeSlot(svc, recent, p.now)
		switch {
		case v.state == types.ServiceUp && !olderAlive(s.history, svc):
			c.healthy++
		case v.state == types.ServiceFailed:
			c.failed++
			reasons = append(reasons, v.reason)
		case d.FromVersion != 0 && monitorFailure(svc, recent, cfg.Monitor, p.now) != "":
			// An update's replica that failed within monitor counts (there
			// is a version to go back to); a new service's, by the verdict
			// alone, as before deployments.
			c.failed++
			reasons = append(reasons, monitorFailure(svc, recent, cfg.Monitor, p.now))
		default:
			c.inflight++
		}
	}
	if len(reasons) > 0 {
		c.failure = reasons[0]
		if len(reasons) > 1 {
			c.failure += fmt.Sprintf(" (and %d more)", len(reasons)-1)
		}
	}
	return c
}

// oldServing reports whether a replica still has a wanted task of an older
// version that has not ended.
func oldServing(history []*types.Task, svc *types.Service) bool {
	cur := current(history)
	return cur != nil && cur.ServiceVersion != svc.Version && !cur.State.Terminal() && cur.Health != types.HealthUnhealthy
}

// olderAlive reports whether a replica still has a task of an older
// version beside its new one: start-first not handed over yet, or the old
// one draining and stopping. The step is not over until it ended, so the
// next step's new tasks never run beside it: start-first stays within
// replicas + parallelism.
func olderAlive(history []*types.Task, svc *types.Service) bool {
	for _, t := range history {
		if !t.State.Terminal() && t.ServiceVersion != svc.Version {
			return true
		}
	}
	return false
}

// sinceResume drops the tasks created before a paused deployment resumed:
// their failures were judged already.
func sinceResume(history []*types.Task, resumed time.Time) []*types.Task {
	if resumed.IsZero() {
		return history
	}
	var out []*types.Task
	for _, t := range history {
		if !t.CreatedAt.Before(resumed) {
			out = append(out, t)
		}
	}
	return out
}

// monitorFailure names a task of svc's version that failed within monitor
// of its start (one rejected never started), or is "".
func monitorFailure(svc *types.Service, history []*types.Task, monitor time.Duration, now time.Time) string {
	for i := len(history) - 1; i >= 0; i-- {
		t := history[i]
		if t.ServiceVersion != svc.Version {
			continue
		}
		end := t.FinishedAt
		if end.IsZero() {
			end = now
		}
		within := t.StartedAt.IsZero() || end.Sub(t.StartedAt) < monitor
		switch {
		case !within:
		case t.State == types.TaskRejected:
			return fmt.Sprintf("replica %s was rejected: %s", t.Name(), orNoReason(t.Error))
		case t.State == types.TaskFailed:
			return fmt.Sprintf("replica %s exited with %s %s after its start, within monitor %s", t.Name(), exitText(t), roundDuration(end.Sub(t.StartedAt)), monitor)
		case t.Health == types.HealthUnhealthy:
			return fmt.Sprintf("replica %s turned unhealthy within monitor %s", t.Name(), monitor)
		}
	}
	return ""
}

func roundDuration(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }

// sameProgress reports whether a SetDeployment would change nothing.
func sameProgress(d *types.Deployment, s *state.SetDeployment) bool {
	return d.State == s.State && d.Updated == s.Updated && d.Healthy == s.Healthy && d.Total == s.Total &&
		d.Failed == s.Failed && d.NextStepAt.Equal(s.NextStepAt) && d.Promoted == s.Promoted &&
		d.ReasonCode == s.ReasonCode && d.Reason == s.Reason
}
