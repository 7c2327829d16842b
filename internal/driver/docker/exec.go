package docker

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// Exec runs a command in a task's container through the Docker exec API,
// as docker exec does: a TTY merges the output into stdout; without one the
// engine's multiplexed stream is split back into stdout and stderr. A
// command the engine cannot start comes back as its exit code (126 on
// Docker 20.10) with the engine's reason in the output.
func (d *Driver) Exec(ctx context.Context, taskID string, o driver.ExecOptions, s driver.ExecStreams) (int, error) {
	id, err := d.find(ctx, taskID)
	if err != nil {
		return 0, fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	size := client.ConsoleSize{Height: uint(o.Rows), Width: uint(o.Cols)}
	attach := !o.Detach
	cr, err := d.cli.ExecCreate(ctx, id, client.ExecCreateOptions{
		User: o.User, TTY: o.TTY, Env: o.Env, WorkingDir: o.WorkDir, Cmd: o.Cmd, ConsoleSize: size,
		AttachStdin: attach && s.Stdin != nil, AttachStdout: attach, AttachStderr: attach,
	})
	if err != nil {
		return 0, fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	if o.Detach {
		if _, err := d.cli.ExecStart(ctx, cr.ID, client.ExecStartOptions{Detach: true}); err != nil {
			return 0, fmt.Errorf("exec in task %s: %w", taskID, err)
		}
		return 0, nil
	}
	hj, err := d.cli.ExecAttach(ctx, cr.ID, client.ExecAttachOptions{TTY: o.TTY, ConsoleSize: size})
	if err != nil {
		return 0, fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	defer hj.Close()
	if o.TTY && o.Rows > 0 && o.Cols > 0 {
		// Engines before API 1.42 (Docker 20.10) ignore ConsoleSize: size
		// the terminal now, as docker exec does there (a command that asks
		// at once may still see 0x0).
		_, _ = d.cli.ExecResize(ctx, cr.ID, client.ExecResizeOptions{Height: uint(o.Rows), Width: uint(o.Cols)})
	}
	if s.Stdin != nil {
		// Ends at the caller's stdin-close (then the command sees EOF) or
		// when the caller closes Stdin after Exec returned.
		go func() {
			_, _ = io.Copy(hj.Conn, s.Stdin)
			_ = hj.CloseWrite()
		}()
	}
	if s.Resize != nil {
		go passSizes(ctx, s.Resize, func(h, w uint) {
			_, _ = d.cli.ExecResize(ctx, cr.ID, client.ExecResizeOptions{Height: h, Width: w})
		})
	}
	if o.TTY {
		_, err = io.Copy(s.Stdout, hj.Reader)
	} else {
		_, err = stdcopy.StdCopy(s.Stdout, s.Stderr, hj.Reader)
	}
	if err != nil && ctx.Err() == nil {
		return 0, fmt.Errorf("exec in task %s: stream: %w", taskID, err)
	}
	in, err := d.cli.ExecInspect(ctx, cr.ID, client.ExecInspectOptions{})
	if err != nil {
		return 0, fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	return in.ExitCode, nil
}

// passSizes hands each terminal size from sizes to resize until ctx (the
// exec's or attach's request) ends or sizes closes.
func passSizes(ctx context.Context, sizes <-chan [2]uint16, resize func(height, width uint)) {
	for {
		select {
		case <-ctx.Done():
			return
		case sz, ok := <-sizes:
			if !ok {
				return
			}
			resize(uint(sz[0]), uint(sz[1]))
		}
	}
}
