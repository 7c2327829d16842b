package execdriver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

const logFile = "output.log"

// recordWait bounds how long a re-attached task's exit waits for another
// waiter's record of its exit code.
const recordWait = 2 * time.Second

// Start runs the task's command, or returns the status of the task if this
// driver already holds it.
func (d *Driver) Start(_ context.Context, cfg *driver.TaskConfig) (*driver.Status, error) {
	if cfg == nil || cfg.Task == nil || cfg.Service == nil {
		return nil, errors.New("start: a task and its service are required")
	}
	id := cfg.Task.ID
	if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
		return nil, fmt.Errorf("start: invalid task ID %q", id)
	}
	d.mu.Lock()
	defer d.mu.Unlock() // one Start at a time per driver keeps adoption simple
	if t, ok := d.tasks[id]; ok {
		return t.status(), nil
	}
	t, err := d.launch(cfg)
	if err != nil {
		return nil, fmt.Errorf("start task %s: %w", id, err)
	}
	d.tasks[id] = t
	d.startHealth(t)
	return t.status(), nil
}

// launch prepares the task directory and starts the process.
func (d *Driver) launch(cfg *driver.TaskConfig) (*task, error) {
	s := cfg.Service
	argv := append(slices.Clone(s.Entrypoint), s.Command...)
	if len(argv) == 0 {
		return nil, fmt.Errorf("service %s has no command: the exec driver needs entrypoint or command", s.Name)
	}
	dir := filepath.Join(d.root, cfg.Task.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	secretsDir, err := d.secretsDir(cfg.Task.ID, len(s.Secrets)+len(s.Configs) > 0)
	if err != nil {
		return nil, err
	}
	if err := writeFiles(secretsDir, s.Secrets, cfg.Secrets, "secret"); err != nil {
		return nil, err
	}
	if err := writeFiles(secretsDir, s.Configs, cfg.Configs, "config"); err != nil {
		return nil, err
	}
	out, err := os.OpenFile(filepath.Join(dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	// The child holds its own copy of the log file; ours can go.
	defer out.Close()

	env := taskEnv(s.Env, secretsDir)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, out, out
	cmd.Dir = s.WorkingDir
	if cmd.Dir == "" {
		cmd.Dir = dir
	}
	// Own process group: Stop signals the whole tree, and a signal to the
	// agent's group (Ctrl-C) does not reach tasks.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	start, _, err := procStart(cmd.Process.Pid)
	if err != nil {
		d.log.Warn("read process start time", "pid", cmd.Process.Pid, "err", err)
	}
	t := &task{dir: dir, done: make(chan struct{}), rec: &record{
		TaskID: cfg.Task.ID, App: cfg.Task.App, Service: cfg.Task.Service, NodeID: d.nodeID,
		PID: cmd.Process.Pid, ProcStart: start, StartedAt: time.Now().UTC(),
		Healthcheck: s.Healthcheck, Env: env, Dir: cmd.Dir,
	}}
	if err := t.rec.save(dir); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, err
	}
	go d.waitChild(t, cmd)
	return t, nil
}

// waitChild reaps the driver's own child and records its exit code. The
// process owns this goroutine: it ends when the process does, not with
// Close, since the process outlives the driver and only a waiter in this
// OS process can read its exit code.
func (d *Driver) waitChild(t *task, cmd *exec.Cmd) {
	err := cmd.Wait()
	code, msg := cmd.ProcessState.ExitCode(), ""
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		msg = err.Error()
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal()) // what a shell (and Docker) reports
	}
	d.exited(t, code, msg)
}

// watchForeign polls a re-attached process, which is not our child, until
// it is gone.
func (d *Driver) watchForeign(t *task) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		tick := time.NewTicker(d.pollEvery)
		defer tick.Stop()
		for {
			t.mu.Lock()
			pid, start := t.rec.PID, t.rec.ProcStart
			t.mu.Unlock()
			if !alive(pid, start) {
				d.foreignExited(t)
				return
			}
			select {
			case <-d.ctx.Done():
				return
			case <-t.done:
				return
			case <-tick.C:
			}
		}
	}()
}

// foreignExited records the end of a process we could not reap. A driver
// in the same OS process may still hold it as a child (an agent that made a
// new Driver) and writes the real exit code to the state file just after
// reaping it, so that file is watched for a moment before the exit code is
// declared unknown.
func (d *Driver) foreignExited(t *task) {
	deadline := time.Now().Add(recordWait)
	for {
		if rec, err := loadRecord(t.dir); err == nil && rec.Exited {
			d.exited(t, rec.ExitCode, rec.Error)
			return
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-d.ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.exited(t, -1, "exit status unknown after agent restart")
}

func taskEnv(env map[string]string, secretsDir string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "BERTH_SECRETS_DIR=" + secretsDir}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// writeFiles writes secrets or configs under dir at their target paths,
// made relative ("/run/secrets/db" -> dir/run/secrets/db).
func writeFiles(dir string, refs []types.FileRef, items map[string]*types.Secret, kind string) error {
	for _, ref := range refs {
		item := items[ref.Source]
		if item == nil {
			return fmt.Errorf("%s %q is not defined in the app", kind, ref.Source)
		}
		target := ref.Target
		if target == "" {
			target = ref.Source
		}
		rel := filepath.Clean("/" + target)[1:]
		if rel == "" {
			return fmt.Errorf("%s %q has no usable target", kind, ref.Source)
		}
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		mode := os.FileMode(ref.Mode)
		if mode == 0 {
			mode = 0o400
		}
		if err := os.WriteFile(path, item.Data, 0o600); err != nil {
			return fmt.Errorf("write %s %q: %w", kind, ref.Source, err)
		}
		if err := os.Chmod(path, mode); err != nil {
			return err
		}
	}
	return nil
}

// secretsOf is the task's own directory on the secrets tmpfs.
func (d *Driver) secretsOf(taskID string) string { return filepath.Join(d.secrets, taskID) }

// secretsDir is where a task's secret and config files go: a directory of
// its own on the driver's tmpfs, which must really be a tmpfs when the task
// has any, so that secrets never reach a persistent disk.
func (d *Driver) secretsDir(taskID string, needed bool) (string, error) {
	dir := d.secretsOf(taskID)
	if !needed {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create the secrets directory: %w", err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return "", fmt.Errorf("check the secrets directory %s: %w", dir, err)
	}
	if fs.Type != unix.TMPFS_MAGIC {
		return "", fmt.Errorf("the secrets directory %s is not on a tmpfs; secrets must not be written to a persistent disk", d.secrets)
	}
	return dir, nil
}
