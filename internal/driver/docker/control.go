package docker

import (
	"context"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
)

var _ driver.Control = (*Driver)(nil)

// Kill signals the task's container once (the engine's kill); the restart
// policy then applies to its exit as to any other.
func (d *Driver) Kill(ctx context.Context, taskID, signal string) error {
	return d.control(ctx, taskID, "kill", func(id string) error {
		_, err := d.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: signal})
		return err
	})
}

// Pause freezes the task's container (the engine's pause, its cgroup
// freezer): the container stays paused across an agent restart.
func (d *Driver) Pause(ctx context.Context, taskID string) error {
	return d.control(ctx, taskID, "pause", func(id string) error {
		_, err := d.cli.ContainerPause(ctx, id, client.ContainerPauseOptions{})
		return err
	})
}

// Unpause thaws a paused container.
func (d *Driver) Unpause(ctx context.Context, taskID string) error {
	return d.control(ctx, taskID, "unpause", func(id string) error {
		_, err := d.cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
		return err
	})
}

// Top lists the container's processes, as `docker top` does (the engine
// runs ps -ef in its namespace).
func (d *Driver) Top(ctx context.Context, taskID string) (*driver.Processes, error) {
	var out *driver.Processes
	err := d.control(ctx, taskID, "list the processes of", func(id string) error {
		res, err := d.cli.ContainerTop(ctx, id, client.ContainerTopOptions{})
		if err == nil {
			out = &driver.Processes{Titles: res.Titles, Rows: res.Processes}
		}
		return err
	})
	return out, err
}

// control finds the task's container and calls fn on it; the engine's
// "is not running" conflict becomes driver.ErrNotRunning.
func (d *Driver) control(ctx context.Context, taskID, what string, fn func(id string) error) error {
	id, err := d.find(ctx, taskID)
	if err != nil {
		return fmt.Errorf("%s task %s: %w", what, taskID, err)
	}
	err = fn(id)
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s task %s: %w", what, taskID, driver.ErrNotFound)
	case cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "not running"):
		return fmt.Errorf("%s task %s: %w", what, taskID, driver.ErrNotRunning)
	}
	return fmt.Errorf("%s task %s: %w", what, taskID, err)
}
