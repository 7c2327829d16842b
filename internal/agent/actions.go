package agent

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// defaultGrace is Compose's stop_grace_period default.
const defaultGrace = 10 * time.Second

// start launches a task on a worker, unless cfg.Parallel starts are
// already in flight (the task is picked up when one finishes).
func (l *loop) start(ctx context.Context, t *types.Task, r *taskRecord) {
	if l.starts >= l.a.cfg.Parallel {
		return
	}
	svc := l.desired.Services[types.ServiceID(t.App, t.Service)]
	if svc == nil || svc.Version != t.ServiceVersion {
		return // the spec of this version is not sent: the manager will shut it down
	}
	name := svc.Driver
	if name == "" {
		name = types.DriverDocker
	}
	d := l.a.drivers[name]
	if d == nil {
		r.startErr = fmt.Sprintf("driver %s is not available on node %s (it offers %v)", name, l.a.cfg.Name, l.a.driverNames())
		l.report(t, r, types.TaskStatus{State: types.TaskRejected, Error: r.startErr})
		return
	}
	if l.meshRefuses(t, r, svc) { // meshports.go: an ingress port held here
		return
	}
	netSlices, wait := l.taskSlices(t, svc)
	if wait != "" {
		l.report(t, r, types.TaskStatus{State: types.TaskStarting, Progress: wait})
		return // its networks' slices are not here yet (overlay.go)
	}
	// Remembered before the driver is called, so a restarted agent never
	// starts the task again and knows how to stop it.
	r.local = localTask{Driver: name, App: t.App, Service: t.Service, Grace: svc.StopGracePeriod, Signal: svc.StopSignal, Started: true}
	if err := l.store.PutTask(t.ID, r.local); err != nil {
		r.local.Started = false
		r.retryAt = time.Now().Add(l.a.timing.RetryEvery)
		l.a.log.Error("save local task state; start postponed", "task", t.ID, "err", err)
		return
	}
	cfg := l.taskConfig(t, svc)
	cfg.Slices, cfg.Overlay = netSlices, l.a.cfg.Overlay
	id := t.ID
	cfg.Progress = func(msg string) { l.progress(id, msg) }
	r.busy = opStart
	l.starts++
	l.report(t, r, types.TaskStatus{State: types.TaskStarting})
	l.a.log.Info("starting task", "task", t.ID, "name", t.Name(), "driver", name)
	l.workers.Go(func() {
		st, err := d.Start(ctx, cfg)
		if err != nil {
			err = l.startError(err)
		}
		l.send(ctx, outcome{taskID: t.ID, op: opStart, status: st, err: err})
	})
}

// progress hands a starting task's progress to the loop, from the driver's
// goroutine. It never blocks the driver: progress is news of now, and a
// full queue drops it (the next one replaces it anyway).
func (l *loop) progress(taskID, msg string) {
	select {
	case l.progressCh <- taskProgress{taskID: taskID, msg: truncate(msg, types.MaxProgress)}:
	default:
	}
}

// applyProgress reports a starting task's progress, unless its start has
// ended meanwhile (a late word must not follow the outcome).
func (l *loop) applyProgress(p taskProgress) {
	r := l.tasks[p.taskID]
	if r == nil || r.busy != opStart || l.desired == nil {
		return
	}
	for _, t := range l.desired.Tasks {
		if t.ID == p.taskID {
			l.report(t, r, types.TaskStatus{State: types.TaskStarting, Progress: p.msg})
			return
		}
	}
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// startError phrases a failed start for the user reading `berth ps`: the
// node by its name (drivers know only its ID, which says nothing to a user).
func (l *loop) startError(err error) error {
	return fmt.Errorf("start on node %s: %w", l.a.cfg.Name, err)
}

// taskConfig assembles what a driver needs: the task, its spec, and the
// app's resources the service refers to.
func (l *loop) taskConfig(t *types.Task, svc *types.Service) *driver.TaskConfig {
	task := *t
	cfg := &driver.TaskConfig{
		Task: &task, Service: svc, NodeID: l.a.NodeID(),
		Networks: map[string]*types.Network{},
		Volumes:  map[string]*types.Volume{},
		Secrets:  map[string]*types.Secret{},
		Configs:  map[string]*types.Secret{},
	}
	res := l.desired.Apps[t.App]
	if res == nil {
		return cfg
	}
	for _, n := range svc.Networks {
		if v := res.Networks[n.Name]; v != nil {
			cfg.Networks[n.Name] = v
		}
	}
	for _, m := range svc.Mounts {
		if v := res.Volumes[m.Source]; m.Type == types.MountVolume && v != nil {
			cfg.Volumes[m.Source] = v
		}
	}
	for _, f := range svc.Secrets {
		if v := res.Secrets[f.Source]; v != nil {
			cfg.Secrets[f.Source] = v
		}
	}
	for _, f := range svc.Configs {
		if v := res.Configs[f.Source]; v != nil {
			cfg.Configs[f.Source] = v
		}
	}
	l.a.mesh.configure(cfg, res) // mesh.go: the agent's DNS, services' addresses
	return cfg
}

// stop stops a task with its service's grace period and signal, as
// remembered when it started, on a worker.
func (l *loop) stop(ctx context.Context, r *taskRecord) {
	d := l.a.drivers[r.local.Driver]
	if d == nil || l.stops >= l.a.cfg.Parallel {
		return
	}
	grace := l.stopGrace(r) // control.go: berth stop -t
	if grace <= 0 {
		grace = defaultGrace
	}
	r.busy = opStop
	l.stops++
	l.a.log.Info("stopping task", "task", r.id, "grace", grace)
	id, sig := r.id, r.local.Signal
	l.workers.Go(func() {
		err := d.Stop(ctx, id, grace, sig)
		var st *driver.Status
		if err == nil {
			st, _ = d.Inspect(ctx, id) // the exit code, if the driver still knows it
		}
		l.send(ctx, outcome{taskID: id, op: opStop, status: st, err: err})
	})
}

// remove deletes what is left of a stopped task, on a worker.
func (l *loop) remove(ctx context.Context, r *taskRecord) {
	d := l.a.drivers[r.local.Driver]
	if d == nil || l.stops >= l.a.cfg.Parallel {
		return
	}
	r.busy = opRemove
	l.stops++
	id := r.id
	l.workers.Go(func() {
		l.send(ctx, outcome{taskID: id, op: opRemove, err: d.Remove(ctx, id)})
	})
}

// finish applies the outcome of a driver call.
func (l *loop) finish(o outcome) {
	if o.op == opStart {
		l.starts--
	} else {
		l.stops--
	}
	r := l.tasks[o.taskID]
	if r == nil {
		return // records are dropped only when idle; nothing to apply
	}
	r.busy = opNone
	switch o.op {
	case opStart:
		if o.err != nil {
			r.startErr = o.err.Error()
			l.a.log.Warn("task rejected", "task", r.id, "err", o.err)
			return
		}
		if o.status == nil {
			// A driver that says nothing of a started task: the next
			// listing fills in the details.
			o.status = &driver.Status{State: driver.StateRunning, StartedAt: time.Now()}
		}
		l.applyOutcomeStatus(r, o.status)
	case opStop:
		if l.failed(r, "stop", o.err) {
			return
		}
		r.stopped = true
		l.applyOutcomeStatus(r, o.status)
	case opRemove:
		if l.failed(r, "remove", o.err) {
			return
		}
		r.status, r.removed = nil, true
		l.forgetLocal(r)
	}
}

func (l *loop) applyOutcomeStatus(r *taskRecord, st *driver.Status) {
	if st != nil {
		st.TaskID = r.id
		l.observe(r.local.Driver, st)
	}
}

// failed logs a failed driver call and postpones the next try.
func (l *loop) failed(r *taskRecord, what string, err error) bool {
	if err == nil {
		return false
	}
	r.retryAt = time.Now().Add(l.a.timing.RetryEvery)
	l.a.log.Warn(what+" task failed; will retry", "task", r.id, "err", err)
	return true
}

// forgetLocal drops the stored state of a removed task. The in-memory
// record stays while the manager lists the task, so it is not reported or
// started again.
func (l *loop) forgetLocal(r *taskRecord) {
	if err := l.store.DeleteTask(r.id); err != nil {
		l.a.log.Warn("forget local task state", "task", r.id, "err", err)
	}
	r.local.Started = false
}
