package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testimage"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

const execCompose = `
services:
  alpha:
    x-berth-driver: exec
    command: ["{{bin}}"]
    environment:
      PORT: "{{port}}"
      MESSAGE: alpha-says-hi
  worker:
    x-berth-driver: exec
    command: ["{{bin}}"]
    environment:
      PORT: "0"        # any free port, so replicas never clash
      MESSAGE: worker
    deploy:
      replicas: 2
`

// TestExecDriver drives a dev server through the CLI with services run as
// host processes: no Docker needed.
func TestExecDriver(t *testing.T) {
	const project = "e2e-exec"
	bin := execAppBinary(t) // first: its cleanup runs after the server stops
	c := h.StartCluster(t, berthBin)
	port := h.FreePort(t)
	dir := t.TempDir()
	compose := strings.NewReplacer("{{bin}}", bin, "{{port}}", strconv.Itoa(port)).Replace(execCompose)
	file := h.WriteFile(t, dir, "compose.yaml", compose)

	// -p and -f after the verb here, before it below: both must work.
	up := c.MustRun(t, dir, "up", "-p", project, "-f", file)
	t.Logf("up:\n%s%s", up.Stdout, up.Stderr)
	h.WaitFor(t, time.Minute, "alpha running after up", c.ExpectRunning(t, project, "alpha", 1))
	h.WaitFor(t, time.Minute, "two workers running after up", c.ExpectRunning(t, project, "worker", 2))

	t.Run("port answers", func(t *testing.T) {
		body := h.HTTPGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 30*time.Second)
		if !strings.Contains(body, "alpha-says-hi") {
			t.Fatalf("GET / = %q, want alpha's MESSAGE", body)
		}
	})

	t.Run("scale up and down", func(t *testing.T) {
		c.MustRun(t, dir, "-p", project, "scale", "worker=4")
		h.WaitFor(t, time.Minute, "four workers", c.ExpectRunning(t, project, "worker", 4))
		c.MustRun(t, dir, "-p", project, "scale", "worker=1")
		h.WaitFor(t, time.Minute, "one worker", c.ExpectRunning(t, project, "worker", 1))
	})

	t.Run("killed process is restarted", func(t *testing.T) {
		tasks, err := c.PS(t, project)
		if err != nil {
			t.Fatal(err)
		}
		alpha := h.Running(tasks, "alpha")
		if len(alpha) != 1 {
			t.Fatalf("want one running alpha, got %s", h.Describe(tasks))
		}
		pid, err := h.TaskPID(alpha[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d: %v", pid, err)
		}
		h.WaitFor(t, time.Minute, "alpha restarted after kill -9", func() error {
			tasks, err := c.PS(t, project)
			if err != nil {
				return err
			}
			now := h.Running(tasks, "alpha")
			if len(now) != 1 || now[0].ID == alpha[0].ID {
				return fmt.Errorf("no new running alpha task yet: %s", h.Describe(tasks))
			}
			if p, err := h.TaskPID(now[0]); err != nil || p == pid {
				return fmt.Errorf("new alpha task has pid %d (%v), the killed one had %d", p, err, pid)
			}
			return nil
		})
		h.HTTPGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 30*time.Second)
	})

	// Started after the cluster's network map has the app (alpha was
	// restarted above), a host process has its app's services' virtual
	// addresses in its environment (docs/cli.md).
	t.Run("services' addresses in the environment", func(t *testing.T) {
		h.WaitFor(t, time.Minute, "BERTH_SERVICE_WORKER_ADDR in alpha's environment", func() error {
			tasks, err := c.PS(t, project)
			if err != nil {
				return err
			}
			alpha := h.Running(tasks, "alpha")
			if len(alpha) != 1 {
				return fmt.Errorf("want one running alpha: %s", h.Describe(tasks))
			}
			pid, err := h.TaskPID(alpha[0])
			if err != nil {
				return err
			}
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if err != nil {
				return err
			}
			for _, kv := range strings.Split(string(env), "\x00") {
				if v, ok := strings.CutPrefix(kv, "BERTH_SERVICE_WORKER_ADDR="); ok {
					if _, err := netip.ParseAddr(v); err != nil {
						return fmt.Errorf("BERTH_SERVICE_WORKER_ADDR=%q is no address", v)
					}
					return nil
				}
			}
			// A process started before the map came has none: restart it.
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				return err
			}
			return fmt.Errorf("alpha (pid %d) has no BERTH_SERVICE_WORKER_ADDR; killed it for a restart", pid)
		})
	})

	t.Run("logs are prefixed", func(t *testing.T) {
		// After `logs`, -f means follow (as in docker compose): the file
		// goes before the verb.
		r := c.MustRun(t, dir, "-f", file, "logs", "-p", project, "alpha")
		want := regexp.MustCompile(`(?m)^\S*alpha\S*\s+\| listening on :` + strconv.Itoa(port) + `$`)
		if !want.MatchString(r.Stdout) {
			t.Fatalf("logs alpha: no line like %q in:\n%s", want, r.Stdout)
		}
		if regexp.MustCompile(`(?m)^\S*worker`).MatchString(r.Stdout) {
			t.Fatalf("logs alpha printed worker lines:\n%s", r.Stdout)
		}
	})

	t.Run("down stops every process", func(t *testing.T) {
		tasks, err := c.PS(t, project)
		if err != nil {
			t.Fatal(err)
		}
		var pids []int
		for _, task := range tasks {
			if pid, err := h.TaskPID(task); err == nil && !task.State.Terminal() {
				pids = append(pids, pid)
			}
		}
		if len(pids) == 0 {
			t.Fatalf("no process IDs in ps: %s", h.Describe(tasks))
		}
		c.MustRun(t, dir, "-p", project, "down", "--wait-timeout", "2m")
		h.WaitFor(t, 30*time.Second, "processes gone after down", func() error {
			for _, pid := range pids {
				if h.ProcessAlive(pid) {
					return fmt.Errorf("pid %d still runs", pid)
				}
			}
			return nil
		})
		if r := c.Run(t, dir, "-p", project, "ps"); r.Code == 0 {
			t.Fatalf("ps after down succeeded; want an error saying the app is not deployed:\n%s", r)
		}
	})
}

// execAppBinary copies the test app into the test's own directory, so the
// processes a failed test leaves can be told apart and killed at cleanup.
func execAppBinary(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src, err := testimage.AppBinary(ctx)
	if err != nil {
		t.Fatalf("build the test app: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "app")
	if err := h.CopyFile(src, dst, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.KillProcessesOf(dst) })
	return dst
}
