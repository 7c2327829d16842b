package docker

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
)

// attachDrain bounds how long Attach waits, once the container exited,
// for the engine to end the attach stream: a stream attached just as the
// container exited may never end on its own.
const attachDrain = 2 * time.Second

// Attach connects to a task's container as docker attach does, for berth
// run: the output from the start (the engine replays its log, then
// streams), stdin when the container keeps it open, resizes with a TTY,
// and the exit code. A container that exited already gives its log and
// code.
func (d *Driver) Attach(ctx context.Context, taskID string, rows, cols uint16, s driver.ExecStreams) (int, error) {
	id, err := d.find(ctx, taskID)
	if err != nil {
		return 0, fmt.Errorf("attach to task %s: %w", taskID, err)
	}
	info, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return 0, fmt.Errorf("attach to task %s: %w", taskID, err)
	}
	cfg, st := info.Container.Config, info.Container.State
	tty := cfg != nil && cfg.Tty
	if st != nil && !st.Running && st.Status != container.StateCreated {
		return st.ExitCode, d.copyLog(ctx, id, tty, s)
	}
	// Waiting from before the attach: an exit in between is not missed.
	wait := d.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	stdin := cfg != nil && cfg.OpenStdin && s.Stdin != nil
	hj, err := d.cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Logs: true, Stdout: true, Stderr: true, Stdin: stdin})
	if err != nil {
		return 0, fmt.Errorf("attach to task %s: %w", taskID, err)
	}
	defer hj.Close()
	if tty && rows > 0 && cols > 0 {
		_, _ = d.cli.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: uint(rows), Width: uint(cols)})
	}
	if stdin {
		go func() {
			_, _ = io.Copy(hj.Conn, s.Stdin)
			_ = hj.CloseWrite() // the container (StdinOnce) sees EOF
		}()
	}
	if tty && s.Resize != nil {
		go passSizes(ctx, s.Resize, func(h, w uint) {
			_, _ = d.cli.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
		})
	}
	copied := make(chan error, 1)
	go func() { copied <- copyOutput(tty, s, hj.Reader) }()
	select {
	case res := <-wait.Result:
		select {
		case <-copied:
		case <-time.After(attachDrain):
		}
		return int(res.StatusCode), nil
	case err := <-wait.Error:
		return 0, fmt.Errorf("attach to task %s: wait for its exit: %w", taskID, err)
	}
}

// copyLog writes an exited container's whole output, stdout and stderr
// apart (merged with a TTY, as the engine keeps it).
func (d *Driver) copyLog(ctx context.Context, id string, tty bool, s driver.ExecStreams) error {
	rc, err := d.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return fmt.Errorf("output of container %s: %w", id, err)
	}
	defer rc.Close()
	return copyOutput(tty, s, rc)
}

// copyOutput splits the engine's multiplexed stream into stdout and
// stderr; a TTY's is one raw stream.
func copyOutput(tty bool, s driver.ExecStreams, r io.Reader) error {
	var err error
	if tty {
		_, err = io.Copy(s.Stdout, r)
	} else {
		_, err = stdcopy.StdCopy(s.Stdout, s.Stderr, r)
	}
	return err
}
