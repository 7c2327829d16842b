package execdriver

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"

	"github.com/berth-dev/berth/internal/driver"
)

// Exec runs a command on the host beside a task's process: in the task's
// working directory (or o.WorkDir) with its environment plus o.Env, as
// o.User when given.
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
	if o.WorkDir != "" {
		dir = o.WorkDir
	}
	cmd := exec.CommandContext(ctx, o.Cmd[0], o.Cmd[1:]...)
	cmd.Env, cmd.Dir = append(env, o.Env...), dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.Stdin, s.Stdout, s.Stderr
	if o.User != "" {
		cred, err := credential(o.User)
		if err != nil {
			return 0, fmt.Errorf("exec in task %s: %w", taskID, err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("exec in task %s: %w", taskID, err)
	}
	return 0, nil
}

// credential resolves "name", "uid" or "uid:gid" as docker exec -u does.
func credential(u string) (*syscall.Credential, error) {
	name, group, _ := cutColon(u)
	var uid, gid uint64
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		uid, gid = n, n
	} else {
		pw, err := user.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("user %s: %w", name, err)
		}
		uid, _ = strconv.ParseUint(pw.Uid, 10, 32)
		gid, _ = strconv.ParseUint(pw.Gid, 10, 32)
	}
	if group != "" {
		g, err := strconv.ParseUint(group, 10, 32)
		if err != nil {
			gr, err := user.LookupGroup(group)
			if err != nil {
				return nil, fmt.Errorf("group %s: %w", group, err)
			}
			g, _ = strconv.ParseUint(gr.Gid, 10, 32)
		}
		gid = g
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func cutColon(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
