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
// engine's multiplexed stream is split back into stdout and stderr.
func (d *Driver) Exec(ctx context.Context, taskID string, o driver.ExecOptions, s driver.ExecStreams) (int, error) {
	id, err := d.find(ctx, taskID)
	if err != nil {
		return 0, fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	cr, err := d.cli.ExecCreate(ctx, id, client.ExecCreateOptions{
		User: o.User, TTY: o.TTY, Env: o.Env, WorkingDir: o.WorkDir, Cmd: o.Cmd,
		AttachStdin: s.Stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return 0, fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	hj, err := d.cli.ExecAttach(ctx, cr.ID, client.ExecAttachOptions{TTY: o.TTY})
	if err != nil {
		return 0, fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	defer hj.Close()
	if s.Stdin != nil {
		go func() {
			_, _ = io.Copy(hj.Conn, s.Stdin)
			_ = hj.CloseWrite()
		}()
	}
	if s.Resize != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case sz, ok := <-s.Resize:
					if !ok {
						return
					}
					_, _ = d.cli.ExecResize(ctx, cr.ID, client.ExecResizeOptions{Height: uint(sz[0]), Width: uint(sz[1])})
				}
			}
		}()
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
