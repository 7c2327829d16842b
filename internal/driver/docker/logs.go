package docker

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
)

// Logs writes the task's output to w, stdout and stderr merged.
func (d *Driver) Logs(ctx context.Context, taskID string, o driver.LogOptions, w io.Writer) error {
	id, err := d.find(ctx, taskID)
	if err != nil {
		return fmt.Errorf("logs of task %s: %w", taskID, err)
	}
	info, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("logs of task %s: %w", taskID, err)
	}
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: o.Follow, Timestamps: o.Timestamps}
	if o.Tail > 0 {
		opts.Tail = strconv.Itoa(o.Tail)
	}
	if !o.Since.IsZero() {
		opts.Since = unixTime(o.Since)
	}
	if !o.Until.IsZero() {
		opts.Until = unixTime(o.Until)
	}
	rc, err := d.cli.ContainerLogs(ctx, id, opts)
	if err != nil {
		return fmt.Errorf("logs of task %s: %w", taskID, err)
	}
	defer rc.Close()
	// A TTY container's log is one raw stream; others are multiplexed.
	if info.Container.Config != nil && info.Container.Config.Tty {
		_, err = io.Copy(w, rc)
	} else {
		_, err = stdcopy.StdCopy(w, w, rc)
	}
	if err != nil && ctx.Err() != nil {
		return nil // the caller stopped following
	}
	if err != nil {
		return fmt.Errorf("logs of task %s: %w", taskID, err)
	}
	return nil
}

// TimedLogs says that the engine keeps the time of every line, so Logs
// honours Since and Until.
func (d *Driver) TimedLogs() bool { return true }

// unixTime is t as the Engine API's since and until take it: seconds and
// nanoseconds since the epoch.
func unixTime(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}
