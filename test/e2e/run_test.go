package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	dockerdrv "github.com/berth-dev/berth/internal/driver/docker"
	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
	"golang.org/x/sys/unix"
)

// runOneOffs tries berth run on TestExecAndCp's cluster (its box and host
// services, on the docker and exec drivers): output, stdin and exit code
// come back through the manager; --rm leaves nothing; without --rm the
// one-off stays, ps -a shows it, up keeps it without an orphan warning,
// and down removes it.
func runOneOffs(t *testing.T, c *h.Cluster, dir, project, file string) {
	for _, tc := range []struct {
		name           string
		stdin          string
		args           []string
		code           int
		stdout, stderr string // stderr: its end (a note on images may come first)
	}{
		{name: "output and exit code", args: []string{"box", "sh", "-c", "echo hi; echo err >&2; exit 3"}, code: 3, stdout: "hi\n", stderr: "err\n"},
		{name: "stdin reaches the one-off", stdin: "piped\n", args: []string{"-T", "box", "cat"}, stdout: "piped\n"},
		{name: "flags after the service are the command's", args: []string{"box", "echo", "-T", "-p", "8080:80", "--rm"}, stdout: "-T -p 8080:80 --rm\n"},
		{name: "-e -w -u", args: []string{"-e", "FOO=bar", "-w", "/tmp", "-u", "65534", "box", "sh", "-c", "echo $FOO $PWD $(id -u) $GREETING"},
			stdout: "bar /tmp 65534 from-compose\n"},
		{name: "exec driver", args: []string{"host", "sh", "-c", "echo $MESSAGE; exit 4"}, code: 4, stdout: "host-says-hi\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runStdin(t, c, dir, tc.stdin, append([]string{"-p", project, "run", "--rm"}, tc.args...)...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.HasSuffix(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
	t.Run("a terminal: size, stdin and exit code", func(t *testing.T) { runThroughPTY(t, c, dir, project) })
	t.Run("run --rm leaves nothing", func(t *testing.T) {
		h.WaitFor(t, 30*time.Second, "no one-off left", func() error { return noOneOffs(t, c, project) })
	})

	t.Run("Ctrl-C leaves it running, or with --rm stops and removes it", func(t *testing.T) {
		r := interruptRun(t, c, dir, project, "box", "sleep", "60")
		if r.code != 130 || !strings.Contains(r.stderr, "goes on running in the cluster") {
			t.Fatalf("exit %d, stderr %q; want 130 and that it goes on", r.code, r.stderr)
		}
		if err := noOneOffs(t, c, project); err == nil {
			t.Fatal("the interrupted one-off is gone; it should run on")
		}
		ps := c.MustRun(t, dir, "ps", "-p", project, "-q", "--status", "running")
		if len(h.Lines(ps.Stdout)) != 3 { // box, host and the one-off
			t.Fatalf("running tasks %q, want box, host and the one-off", ps.Stdout)
		}
		r = interruptRun(t, c, dir, project, "--rm", "box", "sleep", "60")
		if r.code != 130 || !strings.Contains(r.stderr, "is stopped and removed") {
			t.Fatalf("exit %d, stderr %q; want 130 and that it is removed", r.code, r.stderr)
		}
		// The first is still there; remove it as the message says.
		app, err := c.Client().GetApp(context.Background(), project)
		if err != nil {
			t.Fatal(err)
		}
		for _, svc := range app.Services {
			if svc.IsOneOff() {
				if _, err := c.Client().RemoveRun(context.Background(), project, svc.Name); err != nil {
					t.Fatal(err)
				}
			}
		}
		h.WaitFor(t, 30*time.Second, "no one-off left", func() error { return noOneOffs(t, c, project) })
	})

	var kept string
	t.Run("without --rm the one-off stays until down", func(t *testing.T) {
		r := runStdin(t, c, dir, "", "-p", project, "run", "box", "sh", "-c", "exit 2")
		if r.code != 2 {
			t.Fatalf("exit %d, want 2; stderr %q", r.code, r.stderr)
		}
		ps := c.MustRun(t, dir, "ps", "-a", "-p", project, "--format", "{{.Name}} {{.State}}")
		for _, line := range h.Lines(ps.Stdout) {
			if strings.HasPrefix(line, project+"-box-run-") {
				kept = line
			}
		}
		if !strings.HasSuffix(kept, " exited") {
			t.Fatalf("ps -a shows no exited one-off: %q", ps.Stdout)
		}
		up := c.MustRun(t, dir, "up", "-p", project, "-f", file)
		if strings.Contains(up.Stderr+up.Stdout, "orphan") || strings.Contains(up.Stdout, "-run-") {
			t.Fatalf("up speaks of the one-off: %s", up)
		}
		if ps := c.MustRun(t, dir, "ps", "-a", "-p", project); !strings.Contains(ps.Stdout, strings.Fields(kept)[0]) {
			t.Fatalf("up removed the one-off %s: %s", kept, ps.Stdout)
		}
		c.MustRun(t, dir, "down", "-p", project)
		h.WaitFor(t, time.Minute, "the app gone", func() error {
			if ids := h.AppObjects(t, h.KindContainer, project); len(ids) > 0 {
				return fmt.Errorf("containers left: %v", ids)
			}
			return nil
		})
	})
}

// noOneOffs says what is left of berth run's one-offs in project: tasks,
// service records, containers.
func noOneOffs(t *testing.T, c *h.Cluster, project string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	app, err := c.Client().GetApp(ctx, project)
	if err != nil {
		return err
	}
	for _, svc := range app.Services {
		if svc.IsOneOff() {
			return fmt.Errorf("service record %s left", svc.Name)
		}
	}
	tasks, err := c.PS(t, project)
	if err != nil {
		return err
	}
	for _, tk := range tasks {
		if tk.Service != "box" && tk.Service != "host" {
			return fmt.Errorf("task %s left (%s)", tk.Name(), tk.State)
		}
	}
	ids := h.ObjectsLabelled(t, h.KindContainer, dockerdrv.LabelApp+"="+project)
	var left []string
	for _, id := range ids {
		out, err := h.Docker("inspect", "-f", "{{index .Config.Labels \""+dockerdrv.LabelService+"\"}}", id)
		if err == nil && strings.Contains(out, "-run-") {
			left = append(left, id[:12]+" "+strings.TrimSpace(out))
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("containers left: %v", left)
	}
	return nil
}

// interruptRun starts berth run with args, sends it SIGINT (Ctrl-C) once
// its one-off runs, and returns how it ended.
func interruptRun(t *testing.T, c *h.Cluster, dir, project string, args ...string) stdinResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, berthBin, append([]string{"--addr", c.Addr, "-p", project, "run"}, args...)...)
	cmd.Dir, cmd.Env = dir, h.IsolatedEnv(c.DataDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	before := oneOffTasks(t, c, project, types.TaskRunning)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.WaitFor(t, 30*time.Second, "the one-off running", func() error {
		if n := oneOffTasks(t, c, project, types.TaskRunning); n <= before {
			return fmt.Errorf("%d one-offs running, want %d", n, before+1)
		}
		return nil
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	return stdinResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// oneOffTasks counts the tasks of project's one-offs in state.
func oneOffTasks(t *testing.T, c *h.Cluster, project string, state types.TaskState) int {
	tasks, err := c.PS(t, project)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tk := range tasks {
		if strings.Contains(tk.Service, "-run-") && tk.State == state {
			n++
		}
	}
	return n
}

// runThroughPTY runs berth run (no -T) on a pseudo-terminal the test made,
// as a user at a terminal would: the one-off gets a terminal of that size,
// what is typed reaches it, and its exit code is berth's.
func runThroughPTY(t *testing.T, c *h.Cluster, dir, project string) {
	master, slave := openPTY(t) // berthexec_test.go
	defer master.Close()
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 91}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, berthBin, "--addr", c.Addr, "-p", project, "run", "--rm", "box",
		"sh", "-c", "read l; echo got-$l; stty size; exit 5")
	cmd.Dir, cmd.Env = dir, h.IsolatedEnv(c.DataDir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	if _, err := master.Write([]byte("typed\n")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(&out, master) // ends when the CLI, the slave's last holder, exits
	}()
	_ = cmd.Wait()
	<-done
	if code := cmd.ProcessState.ExitCode(); code != 5 || !strings.Contains(out.String(), "got-typed") || !strings.Contains(out.String(), "33 91") {
		t.Fatalf("exit %d, terminal output %q; want 5, got-typed and the size 33 91", code, out.String())
	}
}
