package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	h "github.com/berth-dev/berth/test/e2e/harness"
	"golang.org/x/sys/unix"
)

// execCompose runs a shell-capable container and a host process, so berth
// exec and cp are tried on both drivers.
const execCmdCompose = `
services:
  box:
    image: debian:bookworm-slim
    command: ["sleep", "infinity"]
    working_dir: /srv
    stop_grace_period: 1s
    environment:
      GREETING: from-compose
  host:
    x-berth-driver: exec
    command: ["sleep", "600"]
    environment:
      MESSAGE: host-says-hi
`

// TestExecAndCp runs berth exec and berth cp through a dev cluster's
// manager and agent: the streams, stdin, exit codes and flags of exec, on
// the docker and exec drivers, and files both ways with cp.
func TestExecAndCp(t *testing.T) {
	h.RequireDocker(t)
	const project = "e2e-execcmd"
	h.CleanupDocker(t, project)
	c := h.StartCluster(t, berthBin)
	dir := t.TempDir()
	file := h.WriteFile(t, dir, "compose.yaml", execCmdCompose)
	c.MustRun(t, dir, "up", "-p", project, "-f", file)
	h.WaitFor(t, time.Minute, "box running", c.ExpectRunning(t, project, "box", 1))
	h.WaitFor(t, time.Minute, "host running", c.ExpectRunning(t, project, "host", 1))

	for _, tc := range []struct {
		name           string
		stdin          string
		args           []string
		code           int
		stdout, stderr string // exact, unless contains is set
		contains       bool
	}{
		{name: "stdout and stderr apart", args: []string{"box", "sh", "-c", "echo out; echo err >&2"}, stdout: "out\n", stderr: "err\n"},
		{name: "stdin reaches the command", stdin: "hi\nthere\n", args: []string{"box", "cat"}, stdout: "hi\nthere\n"},
		{name: "exit code", args: []string{"box", "sh", "-c", "exit 3"}, code: 3},
		{name: "flags after the service are the command's", args: []string{"box", "echo", "-T", "--index", "2"}, stdout: "-T --index 2\n"},
		{name: "-e -w -u", args: []string{"-e", "FOO=bar", "-w", "/tmp", "-u", "65534", "box", "sh", "-c", "echo $FOO $PWD $(id -u) $GREETING"},
			stdout: "bar /tmp 65534 from-compose\n"},
		{name: "a command that is not there", args: []string{"box", "no-such-command"}, code: 126, stdout: "no-such-command", contains: true},
		{name: "a bad index names the ones there are", args: []string{"--index", "2", "box", "true"}, code: 1, stderr: "running replicas: 1 (pick one with --index)", contains: true},
		{name: "no such service", args: []string{"nope", "true"}, code: 1, stderr: "has no service nope", contains: true},
		{name: "exec driver: env and dir of the task", args: []string{"host", "sh", "-c", "echo $MESSAGE; test -d \"$PWD\" && echo dir-ok; exit 4"},
			code: 4, stdout: "host-says-hi\ndir-ok\n"},
		{name: "exec driver: stdin", stdin: "via-stdin", args: []string{"host", "cat"}, stdout: "via-stdin"},
		{name: "exec driver: not found is 127", args: []string{"host", "no-such-command"}, code: 127, stderr: "executable file not found", contains: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runStdin(t, c, dir, tc.stdin, append([]string{"exec", "-p", project, "-T"}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit code %d, want %d\nstdout: %q\nstderr: %q", r.code, tc.code, r.stdout, r.stderr)
			}
			// docker 20.10 writes a command it cannot start to stdout.
			out := r.stdout + r.stderr
			switch {
			case tc.contains && tc.stdout != "" && !strings.Contains(out, tc.stdout),
				tc.contains && tc.stderr != "" && !strings.Contains(r.stderr, tc.stderr),
				!tc.contains && (r.stdout != tc.stdout || r.stderr != tc.stderr):
				t.Fatalf("stdout %q, stderr %q; want stdout %q, stderr %q", r.stdout, r.stderr, tc.stdout, tc.stderr)
			}
		})
	}

	t.Run("-d returns at once and the command runs on", func(t *testing.T) {
		if r := runStdin(t, c, dir, "", "exec", "-p", project, "-d", "box", "sh", "-c", "sleep 1; echo done > /tmp/detached"); r.code != 0 || r.stdout != "" {
			t.Fatalf("exec -d: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		h.WaitFor(t, 30*time.Second, "the detached command's file", func() error {
			if r := runStdin(t, c, dir, "", "exec", "-p", project, "-T", "box", "cat", "/tmp/detached"); r.stdout != "done\n" {
				return fmt.Errorf("cat /tmp/detached: exit %d, %q %q", r.code, r.stdout, r.stderr)
			}
			return nil
		})
	})

	t.Run("a terminal: size, resize, EOF and exit code", func(t *testing.T) {
		execThroughPTY(t, c, dir, project)
	})

	t.Run("cp both ways", func(t *testing.T) {
		local := filepath.Join(dir, "in")
		if err := os.MkdirAll(filepath.Join(local, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		h.WriteFile(t, local, "a.txt", "alpha\n")
		h.WriteFile(t, filepath.Join(local, "sub"), "b.txt", "beta\n")
		c.MustRun(t, dir, "cp", "-p", project, filepath.Join(local, "a.txt"), "box:/tmp/copied.txt")
		c.MustRun(t, dir, "cp", "-p", project, local, "box:/tmp/")
		if r := c.MustRun(t, dir, "exec", "-p", project, "-T", "box", "cat", "/tmp/copied.txt", "/tmp/in/sub/b.txt"); r.Stdout != "alpha\nbeta\n" {
			t.Fatalf("the copied files in the task read %q", r.Stdout)
		}
		c.MustRun(t, dir, "cp", "-p", project, "box:/tmp/copied.txt", filepath.Join(dir, "back.txt"))
		c.MustRun(t, dir, "cp", "-p", project, "box:/tmp/in", filepath.Join(dir, "backdir"))
		for path, want := range map[string]string{"back.txt": "alpha\n", "backdir/a.txt": "alpha\n", "backdir/sub/b.txt": "beta\n"} {
			got, err := os.ReadFile(filepath.Join(dir, path))
			if err != nil || string(got) != want {
				t.Fatalf("%s after cp back = %q, %v; want %q", path, got, err, want)
			}
		}
		r := c.Run(t, dir, "cp", "-p", project, "box:/no/such/file", dir)
		if r.Code == 0 || !strings.Contains(r.Stderr, "no such file") {
			t.Fatalf("cp of a missing file: %s", r)
		}
		r = c.Run(t, dir, "cp", "-p", project, filepath.Join(local, "a.txt"), "host:/tmp/x")
		if r.Code == 0 || !strings.Contains(r.Stderr, "host process") {
			t.Fatalf("cp into an exec task: %s", r)
		}
	})

	// Last: it ends with down.
	t.Run("berth run", func(t *testing.T) { runOneOffs(t, c, dir, project, file) }) // run_test.go
}

type stdinResult struct {
	code           int
	stdout, stderr string
}

// runStdin runs the berth CLI against c with stdin fed from a string (an
// empty one: /dev/null), bounded in time.
func runStdin(t *testing.T, c *h.Cluster, dir, stdin string, args ...string) stdinResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, berthBin, append([]string{"--addr", c.Addr}, args...)...)
	cmd.Dir, cmd.Env = dir, h.IsolatedEnv(c.DataDir)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("berth %v did not end in a minute:\nstdout: %q\nstderr: %q", args, stdout.String(), stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run berth %v: %v", args, err)
	}
	return stdinResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// execThroughPTY runs berth exec (no -T) on a pseudo-terminal the test
// made, as a user at a terminal would: the command sees the terminal's
// size, a resize reaches it, Ctrl-D ends its input and its exit code is
// berth's.
func execThroughPTY(t *testing.T, c *h.Cluster, dir, project string) {
	master, slave := openPTY(t)
	defer master.Close()
	setSize := func(rows, cols uint16) {
		if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
			t.Fatal(err)
		}
	}
	setSize(33, 91)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, berthBin, "--addr", c.Addr, "exec", "-p", project, "box",
		"sh", "-c", "while read l; do stty size; done; exit 5")
	cmd.Dir, cmd.Env = dir, h.IsolatedEnv(c.DataDir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// Its own session with the terminal as its controlling one, so the
	// kernel sends it SIGWINCH on a resize.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var mu sync.Mutex
	var out bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	seen := func(s string) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(out.String(), s) {
				return fmt.Errorf("no %q in the terminal's output so far: %q", s, out.String())
			}
			return nil
		}
	}
	// A size travels beside the input (and the first, on Docker 20.10,
	// just after the command started): ask for it until it arrived.
	askSize := func(want string) func() error {
		return func() error {
			if _, err := master.Write([]byte("\n")); err != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond) // paces the asking; the wait is WaitFor's
			return seen(want)()
		}
	}
	h.WaitFor(t, 30*time.Second, "the first size", askSize("33 91"))
	setSize(40, 100)
	h.WaitFor(t, 30*time.Second, "the new size", askSize("40 100"))
	if _, err := master.Write([]byte{4}); err != nil { // Ctrl-D: end of input
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 5 {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("exit code %d (%v), want 5; terminal output: %q", code, err, out.String())
	}
}

// openPTY makes a pseudo-terminal pair: the master the test drives and the
// slave the CLI gets as stdin, stdout and stderr.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlock the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open the pty's slave: %v", err)
	}
	return m, s
}
