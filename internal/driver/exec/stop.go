package execdriver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/driver"
)

// Stop signals the task's process group, waits up to grace for the process
// to exit, then kills the group. It returns once the process has exited.
func (d *Driver) Stop(ctx context.Context, taskID string, grace time.Duration, signal string) error {
	t, err := d.task(taskID)
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	sig, err := parseSignal(signal)
	if err != nil {
		return fmt.Errorf("stop task %s: %w", taskID, err)
	}
	if err := d.signal(t, sig); err != nil {
		return fmt.Errorf("stop task %s: %w", taskID, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
	}
	if err := d.signal(t, syscall.SIGKILL); err != nil {
		return fmt.Errorf("stop task %s: %w", taskID, err)
	}
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// signal sends sig to the task's process group, if the task still runs the
// process it started (a reused pid is left alone).
func (d *Driver) signal(t *task, sig syscall.Signal) error {
	t.mu.Lock()
	pid, start, exited := t.rec.PID, t.rec.ProcStart, t.rec.Exited
	t.mu.Unlock()
	if exited || !alive(pid, start) {
		return nil
	}
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Remove kills the task if it still runs and deletes its directory.
func (d *Driver) Remove(ctx context.Context, taskID string) error {
	t, err := d.task(taskID)
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	if err := d.Stop(ctx, taskID, 0, "SIGKILL"); err != nil {
		return fmt.Errorf("remove task %s: %w", taskID, err)
	}
	d.mu.Lock()
	delete(d.tasks, taskID)
	d.mu.Unlock()
	for _, dir := range []string{t.dir, d.secretsOf(taskID)} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove task %s: %w", taskID, err)
		}
	}
	return nil
}
