package execdriver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/driver"
)

// execWaitDelay bounds how long an exec waits for its output after the
// command exited: a background child that keeps stdout open must not hold
// the caller's exec forever.
const execWaitDelay = 2 * time.Second

// Exec runs a command on the host beside a task's process: in the task's
// working directory (o.WorkDir, relative to it, when given) with its
// environment plus o.Env, as o.User when given. There is no container: the
// command sees the host as the task does. A command that cannot be started
// gives 127 (not found) or 126, as a shell and docker exec do.
func (d *Driver) Exec(ctx context.Context, taskID string, o driver.ExecOptions, s driver.ExecStreams) (int, error) {
	t, err := d.task(taskID)
	if err != nil {
		return 0, fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	if o.TTY {
		return 0, errors.New("the exec driver runs commands without a terminal; use berth exec -T")
	}
	t.mu.Lock()
	env, dir := append([]string(nil), t.rec.Env...), t.rec.Dir
	t.mu.Unlock()
	if dir == "" {
		dir = t.dir
	}
	cmd := exec.CommandContext(ctx, o.Cmd[0], o.Cmd[1:]...)
	if o.Detach { // outlives the request that started it
		cmd = exec.Command(o.Cmd[0], o.Cmd[1:]...)
	}
	cmd.Env, cmd.Dir = append(env, o.Env...), filepath.Join(dir, o.WorkDir)
	if filepath.IsAbs(o.WorkDir) {
		cmd.Dir = o.WorkDir
	}
	cmd.Stdout, cmd.Stderr, cmd.WaitDelay = s.Stdout, s.Stderr, execWaitDelay
	if o.User != "" {
		cred, err := credential(o.User)
		if err != nil {
			return notStarted(s.Stderr, 126, err), nil
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if o.Detach {
		return d.startDetached(cmd, s.Stderr), nil
	}
	// Stdin through a pipe of our own: os/exec would wait for a copy of
	// s.Stdin to end, which never happens for a command that reads none.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	if err := cmd.Start(); err != nil {
		return notStarted(s.Stderr, startCode(err), err), nil
	}
	if s.Stdin != nil {
		go func() {
			_, _ = io.Copy(stdin, s.Stdin)
			_ = stdin.Close()
		}()
	} else {
		_ = stdin.Close()
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return exitCode(ee), nil
	}
	if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		return 0, fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	return 0, nil
}

// startDetached starts cmd with no stdin or output (docker exec -d) and
// reaps it when it ends; the driver does not track it beyond that.
func (d *Driver) startDetached(cmd *exec.Cmd, stderr io.Writer) int {
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	if err := cmd.Start(); err != nil {
		return notStarted(stderr, startCode(err), err)
	}
	go func() { _ = cmd.Wait() }()
	return 0
}

// exitCode is a shell's: the code, or 128 plus the signal that killed it.
func exitCode(ee *exec.ExitError) int {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// startCode is the exit code of a command that could not be started.
func startCode(err error) int {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) && pe.Op == "chdir" {
		return 126 // the working directory, not the command
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return 127
	}
	return 126
}

// notStarted tells the caller why the command did not start, on its
// stderr as docker exec does, and returns code.
func notStarted(stderr io.Writer, code int, err error) int {
	fmt.Fprintf(stderr, "berth exec: %v\n", err)
	return code
}

// credential resolves "name", "uid", "name:group" or "uid:gid" as docker
// exec -u does (a bare uid runs with gid 0, as Docker's default).
func credential(u string) (*syscall.Credential, error) {
	name, group, _ := strings.Cut(u, ":")
	var uid, gid uint64
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		uid = n
	} else {
		pw, err := user.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("unable to find user %s: %w", name, err)
		}
		uid, _ = strconv.ParseUint(pw.Uid, 10, 32)
		gid, _ = strconv.ParseUint(pw.Gid, 10, 32)
	}
	if group != "" {
		g, err := strconv.ParseUint(group, 10, 32)
		if err != nil {
			gr, err := user.LookupGroup(group)
			if err != nil {
				return nil, fmt.Errorf("unable to find group %s: %w", group, err)
			}
			g, _ = strconv.ParseUint(gr.Gid, 10, 32)
		}
		gid = g
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// CopyFrom is refused: an exec task is a host process with no filesystem
// of its own; its files are the node's.
func (d *Driver) CopyFrom(ctx context.Context, taskID, p string, limit int64, start func(), w io.Writer) error {
	return d.copyRefused(taskID)
}

// CopyTo is refused, as CopyFrom.
func (d *Driver) CopyTo(ctx context.Context, taskID, p string, limit int64, r io.Reader) error {
	return d.copyRefused(taskID)
}

func (d *Driver) copyRefused(taskID string) error {
	if _, err := d.task(taskID); err != nil {
		return fmt.Errorf("copy with task %s: %w", taskID, err)
	}
	return fmt.Errorf("task %s is a host process (driver exec) with no filesystem of its own, so copy on its node directly (berth exec -T SERVICE cat FILE works too): %w",
		taskID, driver.ErrCopyUnsupported)
}
