package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
)

// Volume removals (`berth volume rm`): the manager lists, in NodeTasks,
// the named volumes this node must remove its copy of; the loop removes
// each in every driver that keeps volumes, off the loop, and reports it.
// A failure (the engine refuses a volume a container still uses) is
// retried every Timing.RetryEvery, as a teardown is.

// vrOutcome is the result of one volume removal.
type vrOutcome struct {
	name string
	err  error
}

// reconcileVolumeRemovals starts the removals the manager lists and this
// node has not done, and forgets those it no longer lists.
func (l *loop) reconcileVolumeRemovals(ctx context.Context, now time.Time) {
	if l.volRemovals == nil {
		l.volRemovals, l.vrResults = map[string]*teardown{}, make(chan vrOutcome)
	}
	want := map[string]api.VolumeRef{}
	for _, v := range l.desired.RemoveVolumes {
		want[v.Name] = v
	}
	for name, td := range l.volRemovals {
		if _, ok := want[name]; !ok && !td.busy {
			delete(l.volRemovals, name)
		}
	}
	for name, v := range want {
		td := l.volRemovals[name]
		if td == nil {
			td = &teardown{since: now}
			l.volRemovals[name] = td
		}
		if td.busy || td.done || now.Before(td.retryAt) {
			continue
		}
		td.busy = true
		l.a.log.Info("removing volume", "app", v.App, "volume", name)
		l.workers.Go(func() {
			err := l.removeVolume(ctx, v)
			select {
			case l.vrResults <- vrOutcome{name: name, err: err}:
			case <-ctx.Done():
			}
		})
	}
}

func (l *loop) removeVolume(ctx context.Context, v api.VolumeRef) error {
	var errs []error
	for name, d := range l.a.drivers {
		if vr, ok := d.(driver.VolumeRemover); ok {
			if err := vr.RemoveVolume(ctx, v.App, v.Name); err != nil {
				errs = append(errs, fmt.Errorf("driver %s: %w", name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := l.a.client.ReportVolumeRemoved(ctx, l.a.NodeID(), v.Name); err != nil {
		return fmt.Errorf("report removal of volume %s: %w", v.Name, err)
	}
	return nil
}

func (l *loop) finishVolumeRemoval(o vrOutcome) {
	td := l.volRemovals[o.name]
	if td == nil {
		return
	}
	td.busy = false
	if o.err != nil {
		td.retryAt = time.Now().Add(l.a.timing.RetryEvery)
		l.a.log.Warn("volume removal failed; will retry", "volume", o.name, "err", o.err)
		return
	}
	td.done = true
}
