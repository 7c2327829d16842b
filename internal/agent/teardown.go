package agent

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// tdOutcome is the result of an app teardown.
type tdOutcome struct {
	app string
	err error
}

// startTeardown removes an app's networks (and volumes) in every driver and
// tells the manager, on a worker.
func (l *loop) startTeardown(ctx context.Context, app string, volumes bool, td *teardown) {
	td.busy = true
	if td.since.IsZero() {
		td.since = time.Now()
	}
	// Docker 20.10 can keep stale endpoints on a network after many
	// containers went ("has active endpoints") until dockerd restarts: after
	// Timing.TeardownGiveUp the network is left behind, said in the log, and
	// the app's removal completes anyway.
	giveUp := time.Since(td.since) >= l.a.timing.TeardownGiveUp
	l.a.log.Info("tearing down app", "app", app, "volumes", volumes)
	l.workers.Go(func() {
		err := l.teardownApp(ctx, app, volumes, giveUp)
		select {
		case l.tdResults <- tdOutcome{app: app, err: err}:
		case <-ctx.Done():
		}
	})
}

func (l *loop) teardownApp(ctx context.Context, app string, volumes, giveUp bool) error {
	var errs []error
	for name, d := range l.a.drivers {
		if err := d.RemoveApp(ctx, app, volumes); err != nil {
			errs = append(errs, fmt.Errorf("driver %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		if !giveUp {
			return fmt.Errorf("remove resources of app %s: %w", app, err)
		}
		l.a.log.Warn("giving up removing the app's networks or volumes; they are left behind on this node", "app", app, "err", err)
	}
	if err := l.a.client.ReportTeardown(ctx, l.a.NodeID(), app); err != nil {
		return fmt.Errorf("report teardown of app %s: %w", app, err)
	}
	return nil
}

func (l *loop) finishTeardown(o tdOutcome) {
	td := l.teardowns[o.app]
	if td == nil {
		return
	}
	td.busy = false
	if o.err != nil {
		td.retryAt = time.Now().Add(l.a.timing.RetryEvery)
		l.a.log.Warn("app teardown failed; will retry", "app", o.app, "err", o.err)
		return
	}
	td.done = true
}
