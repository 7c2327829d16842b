package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// deployState is where a deploy stands after one look at its tasks.
type deployState int

const (
	deployWaiting deployState = iota // something is still converging
	deployDone                       // every service reached its goal
	deployFailed                     // a service cannot reach it
	// deployStalled: only unplaceable tasks are left and nothing else
	// moves. The caller fails once this lasts, since a task that stops
	// elsewhere could still free room.
	deployStalled
)

// serviceProgress counts one service's current-version replicas, for the
// progress display, and carries the controller's verdict on it.
type serviceProgress struct {
	Name          string
	Want          int // replicas wanted (global: tasks the scheduler made)
	Ready         int // running, and healthy when the service has a check
	Completed     int // one-shot replicas that exited 0
	Starting      int // on their way: created, assigned, starting, restarting
	Pending       int // the scheduler could not place them
	PendingReason string
	// Progress is what one starting replica waits for (its image's pull).
	Progress string
	// Done and Failure follow the controller's verdict (types.Service.Status);
	// the counts only show how far the replicas are.
	Done    bool
	Failure string // why the service cannot converge
	Verdict *types.ServiceStatus
	// Rollout is where the deployment of an update stands (deployments.go).
	Rollout string
}

// progress is one evaluation of a deploy.
type progress struct {
	Services []serviceProgress
	State    deployState
	Reason   string // for deployFailed and deployStalled: "service web: ..."
	Failed   *serviceProgress
	stopping bool // a task of the app is still being stopped
}

// evaluate is where a deploy of app stands, from the app as the manager
// stores it now (with the controller's verdicts) and its tasks. Whether a
// service is done or failed is the controller's verdict on its current
// Version, never decided here: `up`, `scale` and `ps` must agree with what
// the controller does. The CLI decides one thing only: how long it waits
// for tasks that cannot be placed (deployStalled).
func evaluate(app *types.App, tasks []*types.Task) progress {
	var p progress
	for _, svc := range app.Services {
		if svc.IsOneOff() {
			continue // berth run follows its one-off; a deploy never waits for it
		}
		p.Services = append(p.Services, evaluateService(app.Name, svc, tasks))
	}
	p.stopping = stopping(app.Name, tasks)
	p.State, p.Reason = overall(p.Services, p.stopping)
	for i := range p.Services {
		if p.Services[i].Failure != "" {
			p.Failed = &p.Services[i]
			break
		}
	}
	return p
}

func overall(svcs []serviceProgress, stopping bool) (deployState, string) {
	allDone, starting := true, false
	var stuck *serviceProgress
	for i := range svcs {
		s := &svcs[i]
		if s.Failure != "" {
			return deployFailed, fmt.Sprintf("service %s: %s", s.Name, s.Failure)
		}
		allDone = allDone && s.Done
		starting = starting || (!s.Done && s.Starting > 0)
		if stuck == nil && !s.Done && s.Pending > 0 {
			stuck = s
		}
	}
	switch {
	case allDone:
		return deployDone, ""
	case stuck != nil && !starting && !stopping:
		return deployStalled, fmt.Sprintf("service %s: %d of %d replicas cannot be placed: %s",
			stuck.Name, stuck.Pending, stuck.Want, stuck.PendingReason)
	}
	return deployWaiting, ""
}

// stopping reports whether any task of the app is still being stopped: it
// may free the resources or ports a pending task waits for.
func stopping(app string, tasks []*types.Task) bool {
	for _, t := range tasks {
		if t.App == app && t.DesiredState == types.DesiredShutdown && !t.State.Terminal() {
			return true
		}
	}
	return false
}

func evaluateService(app string, svc *types.Service, tasks []*types.Task) serviceProgress {
	sp := serviceProgress{Name: svc.Name}
	slots := latestPerSlot(app, svc, tasks)
	if svc.Mode == types.ModeGlobal {
		sp.Want = len(slots)
	} else {
		sp.Want = svc.Replicas
		// Replicas the controller has not created yet are on their way.
		if missing := svc.Replicas - len(slots); missing > 0 {
			sp.Starting += missing
		}
	}
	for _, t := range slots {
		classify(&sp, svc, t)
	}
	if st := svc.Status; st != nil && st.Version == svc.Version {
		sp.Verdict = st
		switch st.State {
		case types.ServiceUp:
			sp.Done = true
		case types.ServiceFailed:
			sp.Failure = orUnknown(st.Reason)
		}
	}
	return sp
}

// latestPerSlot returns the newest current-version task of each replica:
// per slot in replicated mode (slots beyond Replicas are being removed),
// per node in global mode, in slot order.
func latestPerSlot(app string, svc *types.Service, tasks []*types.Task) []*types.Task {
	latest := map[string]*types.Task{}
	for _, t := range tasks {
		if t.App != app || t.Service != svc.Name || t.ServiceVersion != svc.Version {
			continue
		}
		if svc.Mode != types.ModeGlobal && t.Slot > svc.Replicas {
			continue
		}
		if svc.Mode == types.ModeGlobal && t.DesiredState == types.DesiredShutdown && !t.State.Terminal() {
			continue // its node no longer qualifies
		}
		k := slotKey(t)
		if cur, ok := latest[k]; !ok || newer(t, cur) {
			latest[k] = t
		}
	}
	out := slices.Collect(maps.Values(latest))
	sortTasks(out)
	return out
}

func slotKey(t *types.Task) string {
	if t.Slot == 0 {
		return "node:" + t.NodeID
	}
	return fmt.Sprintf("slot:%d", t.Slot)
}

func newer(a, b *types.Task) bool {
	if a.Attempt != b.Attempt {
		return a.Attempt > b.Attempt
	}
	return a.CreateIndex > b.CreateIndex
}

// classify adds one replica's newest task to the service's counts, for the
// display: a finished replica that is not done counts as on its way, as
// the verdict says when it is not.
func classify(sp *serviceProgress, svc *types.Service, t *types.Task) {
	switch t.State {
	case types.TaskRunning:
		if t.DesiredState == types.DesiredRunning && t.Healthy(svc) {
			sp.Ready++
			return
		}
		sp.Starting++
	case types.TaskPending:
		if t.PendingReason == "" {
			sp.Starting++ // not yet looked at by the scheduler
			return
		}
		sp.Pending++
		sp.PendingReason = t.PendingReason
	case types.TaskComplete:
		if !svc.RestartPolicy.WillRestart(t, nil, time.Time{}) {
			sp.Completed++
			return
		}
		sp.Starting++
	default: // assigned, starting, or finished with a replacement to come
		sp.Starting++
		if t.State == types.TaskStarting && t.Progress != "" {
			sp.Progress = t.Progress
		}
	}
}

// taskError is a finished task's error, unless it only repeats the exit
// code shown beside it.
func taskError(t *types.Task) string {
	if t.ExitCode != nil && t.Error == fmt.Sprintf("exit code %d", *t.ExitCode) {
		return ""
	}
	return t.Error
}

func orUnknown(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// summary is the progress line of one service: "3/5 running (2 starting)".
func (sp serviceProgress) summary() string {
	var b strings.Builder
	if sp.Completed > 0 && sp.Ready == 0 {
		fmt.Fprintf(&b, "%d/%d completed", sp.Completed, sp.Want)
	} else {
		fmt.Fprintf(&b, "%d/%d running", sp.Ready, sp.Want)
		if sp.Completed > 0 {
			fmt.Fprintf(&b, ", %d completed", sp.Completed)
		}
	}
	var extra []string
	if sp.Rollout != "" {
		extra = append(extra, sp.Rollout)
	}
	if sp.Starting > 0 {
		s := fmt.Sprintf("%d starting", sp.Starting)
		if sp.Progress != "" {
			s += ": " + sp.Progress
		}
		extra = append(extra, s)
	}
	if sp.Pending > 0 {
		extra = append(extra, fmt.Sprintf("%d pending: %s", sp.Pending, sp.PendingReason))
	}
	if sp.Failure != "" {
		extra = append(extra, sp.Failure)
	}
	if len(extra) > 0 {
		fmt.Fprintf(&b, "  (%s)", strings.Join(extra, ", "))
	}
	return b.String()
}

// failureLogLines is how many of a failed task's last log lines `up` shows.
const failureLogLines = 10

// failureError is a failed deploy's error: the verdict's reason, the
// failing health check's output, and the last lines the failed task
// logged, so the cause shows without `docker inspect` or `berth logs`.
func failureError(ctx context.Context, c *api.Client, reason string, sp *serviceProgress) error {
	var b strings.Builder
	b.WriteString(reason)
	v := sp.Verdict
	if v == nil {
		return errors.New(b.String())
	}
	if out := strings.TrimSpace(v.HealthOutput); out != "" {
		b.WriteString("\nlast health check output:\n")
		b.WriteString(indentLines(out))
	}
	if v.TaskID != "" {
		if lines, err := lastLogLines(ctx, c, v.TaskID, failureLogLines); err == nil && lines != "" {
			fmt.Fprintf(&b, "\nlast log lines of %s:\n%s", cmp.Or(v.TaskName, v.TaskID), indentLines(lines))
		}
	}
	return errors.New(b.String())
}

// lastLogLines reads the end of a task's log, bounded in time and size: a
// node that does not answer must not keep `up` from reporting the failure.
func lastLogLines(ctx context.Context, c *api.Client, taskID string, n int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rc, err := c.TaskLogs(ctx, taskID, api.LogOptions{Tail: n})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 64<<10))
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(data), "\n"), nil
}

func indentLines(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "  " + strings.Join(lines, "\n  ")
}
