package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// defaultStallGrace is how long only unplaceable tasks may be left before
// the deploy fails: the scheduler gets a few rounds to find room (and a
// just-started agent the time to register).
const defaultStallGrace = 5 * time.Second

// blockingWait bounds one blocking query while following a deploy.
const blockingWait = 30 * time.Second

// followDeploy waits until app's services converge (see evaluate), showing
// progress on stdout. It fails with the reason when a service cannot
// converge, or when timeout passes. app is the app as submitted (or its
// services to follow): each look reads the stored app again for the
// controller's verdicts, and the tasks.
func (e *env) followDeploy(ctx context.Context, c *api.Client, app *types.App, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	disp := newProgressDisplay(e.stdout, e.isTTY(e.stdout), e.termWidth(e.stdout))
	var (
		index        uint64
		last         progress
		stalledSince time.Time
	)
	for {
		wait := blockingWait
		if !stalledSince.IsZero() {
			wait = max(e.stallGrace-e.now().Sub(stalledSince), 100*time.Millisecond)
		}
		tasks, meta, err := c.ListTasks(ctx, api.TaskQuery{App: app.Name, QueryOptions: api.QueryOptions{Index: index, Wait: wait}})
		if err != nil {
			return deployWaitError(ctx, err, last, timeout)
		}
		judged, err := judgedApp(ctx, c, app)
		if err != nil {
			return deployWaitError(ctx, err, last, timeout)
		}
		deps, err := appDeployments(ctx, c, app.Name)
		if err != nil {
			return deployWaitError(ctx, err, last, timeout)
		}
		last = withDeployments(evaluate(judged, tasks), app, deps) // deployments.go
		disp.update(last)
		switch last.State {
		case deployDone:
			return nil
		case deployFailed:
			return failureError(ctx, c, last.Reason, withTaskDetail(last.Failed, tasks))
		case deployStalled:
			if stalledSince.IsZero() {
				stalledSince = e.now()
			} else if e.now().Sub(stalledSince) >= e.stallGrace {
				return errors.New(last.Reason)
			}
		default:
			stalledSince = time.Time{}
		}
		if err := pace(ctx, &index, meta.Index); err != nil {
			return deployWaitError(ctx, err, last, timeout)
		}
	}
}

// judgedApp reads the stored app for its verdicts, keeping only the
// services followed. A read older than the submission (a manager that has
// not applied it yet) carries no verdict on it: its services count as
// converging.
func judgedApp(ctx context.Context, c *api.Client, followed *types.App) (*types.App, error) {
	stored, err := c.GetApp(ctx, followed.Name)
	if err != nil {
		return nil, fmt.Errorf("read app %s: %w", followed.Name, err)
	}
	out := *stored
	out.Services = nil
	for _, f := range followed.Services {
		svc := stored.Service(f.Name)
		if svc == nil || stored.Version < followed.Version || svc.Version < f.Version {
			stale := *f
			stale.Status = nil
			svc = &stale
		}
		out.Services = append(out.Services, svc)
	}
	return &out, nil
}

// pace advances the blocking-query index. An answer that did not move the
// index (no blocking support, or the wait ran out) is followed by a short
// pause, so the loop polls at a modest pace instead of spinning.
func pace(ctx context.Context, index *uint64, got uint64) error {
	if got > *index {
		*index = got
		return nil
	}
	t := time.NewTimer(500 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// deployWaitError names the first unfinished service when the wait ran out.
func deployWaitError(ctx context.Context, err error, last progress, timeout time.Duration) error {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	for _, s := range last.Services {
		if !s.Done {
			return fmt.Errorf("service %s did not converge within %s: %s", s.Name, timeout, s.summary())
		}
	}
	return fmt.Errorf("the deploy did not converge within %s", timeout)
}

// withTaskDetail fills in, from the service's newest failing task, the
// health check output and the task to read logs of when the verdict does
// not carry them: a deployment can stop (paused at max_failure_ratio) in
// an entry before the controller's verdict with the probe's output, and
// up must not lose the output that says why.
func withTaskDetail(sp *serviceProgress, tasks []*types.Task) *serviceProgress {
	if sp == nil || (sp.Verdict != nil && sp.Verdict.HealthOutput != "" && sp.Verdict.TaskID != "") {
		return sp
	}
	var pick *types.Task
	for _, t := range tasks {
		if t.Service != sp.Name || (t.HealthOutput == "" && t.State != types.TaskFailed) {
			continue
		}
		if pick == nil || t.CreateIndex > pick.CreateIndex {
			pick = t
		}
	}
	if pick == nil {
		return sp
	}
	out := *sp
	v := types.ServiceStatus{}
	if sp.Verdict != nil {
		v = *sp.Verdict
	}
	if v.HealthOutput == "" {
		v.HealthOutput = pick.HealthOutput
	}
	if v.TaskID == "" {
		v.TaskID, v.TaskName = pick.ID, pick.Name()
	}
	out.Verdict = &v
	return &out
}
