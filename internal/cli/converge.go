package cli

import (
	"fmt"
	"maps"
	"slices"
	"strings"

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

// serviceProgress counts one service's current-version replicas.
type serviceProgress struct {
	Name          string
	Want          int // replicas wanted (global: tasks the scheduler made)
	Ready         int // running, and healthy when the service has a check
	Completed     int // one-shot replicas that exited 0
	Starting      int // on their way: created, assigned, starting, restarting
	Pending       int // the scheduler could not place them
	PendingReason string
	Done          bool
	Failure       string // why the service cannot converge
}

// progress is one evaluation of a deploy.
type progress struct {
	Services []serviceProgress
	State    deployState
	Reason   string // for deployFailed and deployStalled: "service web: ..."
}

// evaluate is the convergence rule of up and scale, as a pure function of
// the app's spec and its tasks. Only tasks of a service's current Version
// count; older ones are being replaced.
func evaluate(app *types.App, tasks []*types.Task) progress {
	var p progress
	for _, svc := range app.Services {
		p.Services = append(p.Services, evaluateService(app.Name, svc, tasks))
	}
	p.State, p.Reason = overall(p.Services, stopping(app.Name, tasks))
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
	sp.Done = sp.Failure == "" && sp.Ready+sp.Completed >= sp.Want &&
		(sp.Want > 0 || svc.Mode != types.ModeGlobal)
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

// classify adds one replica's newest task to the service's counts.
func classify(sp *serviceProgress, svc *types.Service, t *types.Task) {
	switch t.State {
	case types.TaskRunning:
		if t.DesiredState == types.DesiredRunning && (!hasHealthcheck(svc) || t.Health == types.HealthHealthy) {
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
	case types.TaskRejected:
		sp.fail(fmt.Sprintf("task %s was rejected: %s", t.Name(), orUnknown(t.Error)))
	case types.TaskComplete, types.TaskFailed, types.TaskLost, types.TaskShutdown:
		classifyFinished(sp, svc, t)
	default: // assigned, starting
		sp.Starting++
	}
}

func classifyFinished(sp *serviceProgress, svc *types.Service, t *types.Task) {
	cond := svc.RestartPolicy.Condition
	if t.State == types.TaskComplete && exitCode(t) == 0 && cond != types.RestartAny {
		sp.Completed++
		return
	}
	if t.State == types.TaskFailed && !restartComing(svc.RestartPolicy, t) {
		msg := fmt.Sprintf("task %s failed%s", t.Name(), exitSuffix(t))
		if detail := taskError(t); detail != "" {
			msg += ": " + detail
		}
		if cond != types.RestartNone {
			msg += fmt.Sprintf(" (gave up after %d restarts)", t.Attempt)
		}
		sp.fail(msg)
		return
	}
	sp.Starting++ // a replacement task comes
}

// fail records why the service cannot converge; the first replica's
// reason (in slot order) is the one reported.
func (sp *serviceProgress) fail(msg string) {
	if sp.Failure == "" {
		sp.Failure = msg
	}
}

// restartComing reports whether the restart policy replaces a failed task.
func restartComing(rp types.RestartPolicy, t *types.Task) bool {
	if rp.Condition == types.RestartNone {
		return false
	}
	return rp.MaxAttempts == 0 || t.Attempt < rp.MaxAttempts
}

func hasHealthcheck(svc *types.Service) bool {
	hc := svc.Healthcheck
	return hc != nil && !hc.Disable && len(hc.Test) > 0 && !strings.EqualFold(hc.Test[0], "NONE")
}

func exitCode(t *types.Task) int {
	if t.ExitCode == nil {
		return 0
	}
	return *t.ExitCode
}

func exitSuffix(t *types.Task) string {
	if t.ExitCode == nil {
		return ""
	}
	return fmt.Sprintf(" with exit code %d", *t.ExitCode)
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
	if sp.Starting > 0 {
		extra = append(extra, fmt.Sprintf("%d starting", sp.Starting))
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
