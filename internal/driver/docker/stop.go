package docker

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
)

// Stop sends signal (empty: the container's stop signal), waits up to grace
// for the container to exit, then kills it. It returns once the container
// is no longer running.
func (d *Driver) Stop(ctx context.Context, taskID string, grace time.Duration, signal string) error {
	id, err := d.find(ctx, taskID)
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop task %s: %w", taskID, err)
	}
	if signal == "" {
		secs := int((grace + time.Second - 1) / time.Second)
		_, err = d.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
	} else {
		err = d.stopWithSignal(ctx, id, grace, signal)
	}
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop task %s: %w", taskID, err)
	}
	return d.files.removeSecrets(taskID)
}

// stopWithSignal does what ContainerStop does with a signal: engines before
// API 1.42 ignore ContainerStop's signal, so it is sent and waited for here.
func (d *Driver) stopWithSignal(ctx context.Context, id string, grace time.Duration, signal string) error {
	if err := d.kill(ctx, id, signal); err != nil {
		return err
	}
	graceCtx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if d.waitExit(graceCtx, id) == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := d.kill(ctx, id, "SIGKILL"); err != nil {
		return err
	}
	return d.waitExit(ctx, id)
}

// kill signals the container; one that is not running needs no signal.
func (d *Driver) kill(ctx context.Context, id, signal string) error {
	_, err := d.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: signal})
	if cerrdefs.IsConflict(err) {
		return nil
	}
	return err
}

// waitExit returns when the container is not running, or ctx's error.
func (d *Driver) waitExit(ctx context.Context, id string) error {
	res := d.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-res.Result:
		return nil
	case err := <-res.Error:
		if err == nil {
			return errors.New("wait for container: stream closed")
		}
		return err
	}
}
