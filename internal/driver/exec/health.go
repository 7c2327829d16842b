package execdriver

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// Healthcheck defaults, as Docker's.
const (
	defaultInterval = 30 * time.Second
	defaultTimeout  = 30 * time.Second
	defaultRetries  = 3
)

// startHealth runs the task's healthcheck until the task exits or the
// driver closes. Health is starting until the first pass; it turns
// unhealthy after Retries consecutive failures, but failures inside the
// start period do not count.
func (d *Driver) startHealth(t *task) {
	t.mu.Lock()
	hc, env, dir := t.rec.Healthcheck, t.rec.Env, t.rec.Dir
	if !hc.Enabled() {
		t.mu.Unlock()
		return
	}
	t.health = types.HealthStarting
	started := t.rec.StartedAt
	t.mu.Unlock()

	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		ctx, cancel := context.WithCancel(d.ctx)
		defer cancel()
		go func() { // the task's end stops its checks
			select {
			case <-t.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		d.healthLoop(ctx, t, hc, env, dir, started)
	}()
}

func (d *Driver) healthLoop(ctx context.Context, t *task, hc *types.Healthcheck, env []string, dir string, started time.Time) {
	interval, retries := orDuration(hc.Interval, defaultInterval), hc.Retries
	if retries <= 0 {
		retries = defaultRetries
	}
	failures := 0
	for {
		// During the start period, check at StartInterval when given.
		wait := interval
		if hc.StartInterval > 0 && time.Since(started) < hc.StartPeriod {
			wait = hc.StartInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		out, err := runCheck(ctx, hc, env, dir)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil:
			failures = 0
			d.setHealth(t, types.HealthHealthy, "")
		case time.Since(started) < hc.StartPeriod:
			// not counted
		default:
			failures++
			if failures >= retries {
				d.setHealth(t, types.HealthUnhealthy, probeOutput(out, err))
			}
		}
	}
}

// setHealth records a health and the output that explains it. Only a
// change of health is news: a failing probe's output changes on every run,
// and reporting each would cost a Raft write per probe.
func (d *Driver) setHealth(t *task, h types.Health, output string) {
	t.mu.Lock()
	changed := t.health != h && !t.rec.Exited
	if changed {
		t.healthOutput = output
	}
	t.health = h
	t.mu.Unlock()
	if changed {
		d.publish(t.status())
	}
}

// runCheck runs one probe: ["CMD", argv...] directly, ["CMD-SHELL", cmd]
// through /bin/sh -c. It fails on a non-zero exit or a timeout, and returns
// what the probe printed (stdout and stderr, the first MaxHealthOutput bytes).
func runCheck(ctx context.Context, hc *types.Healthcheck, env []string, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, orDuration(hc.Timeout, defaultTimeout))
	defer cancel()
	var cmd *exec.Cmd
	switch {
	case hc.Test[0] == "CMD" && len(hc.Test) > 1:
		cmd = exec.CommandContext(ctx, hc.Test[1], hc.Test[2:]...)
	case hc.Test[0] == "CMD-SHELL" && len(hc.Test) == 2:
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", hc.Test[1])
	default:
		return "", fmt.Errorf("healthcheck test %q: want CMD or CMD-SHELL", hc.Test)
	}
	out := &capped{max: types.MaxHealthOutput}
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, dir, out, out
	err := cmd.Run()
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("timed out after %s", orDuration(hc.Timeout, defaultTimeout))
	}
	return out.String(), err
}

// probeOutput is what explains a failed probe: its output, else its error.
func probeOutput(out string, err error) string {
	if s := strings.TrimSpace(out); s != "" {
		return s
	}
	return err.Error()
}

// capped keeps the first max bytes written to it and drops the rest, so a
// chatty probe cannot grow the report.
type capped struct {
	max int
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) String() string { return c.buf.String() }

func orDuration(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}
