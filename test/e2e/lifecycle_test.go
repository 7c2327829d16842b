package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

const lifecycleCompose = `
services:
  web:
    image: {{image}}
    ports: ["{{port}}:8080"]
    environment:
      MESSAGE: life
    deploy:
      restart_policy:
        condition: any
  job:
    image: {{image}}
    ports: ["{{jobport}}:8080"]
    deploy:
      restart_policy:
        condition: none
  proc:
    x-berth-driver: exec
    command: ["{{bin}}"]
    environment:
      PORT: "0"
`

// TestLifecycleVerbs drives berth stop, start, restart, kill, pause,
// unpause, top, rm and wait on a one-node cluster with the docker driver:
// a stop holds through a server restart, and each verb reaches the task
// through the manager and its agent.
func TestLifecycleVerbs(t *testing.T) {
	h.RequireDocker(t)
	const project = "e2e-lifecycle"
	bin := execAppBinary(t) // first: its cleanup runs after the server stops
	img := h.TestImage(t)
	h.CleanupDocker(t, project)
	c := h.StartCluster(t, berthBin)
	dir := t.TempDir()
	port, jobPort := h.FreePort(t), h.FreePort(t)
	file := h.WriteFile(t, dir, "compose.yaml", strings.NewReplacer("{{image}}", img, "{{bin}}", bin,
		"{{port}}", strconv.Itoa(port), "{{jobport}}", strconv.Itoa(jobPort)).Replace(lifecycleCompose))
	run := func(args ...string) h.Result {
		t.Helper()
		return c.MustRun(t, dir, append([]string{"-p", project, "-f", file}, args...)...)
	}
	run("up")
	h.WaitFor(t, time.Minute, "web running", c.ExpectRunning(t, project, "web", 1))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	webTask := func() string {
		t.Helper()
		tasks, err := c.PS(t, project)
		if err != nil {
			t.Fatal(err)
		}
		r := h.Running(tasks, "web")
		if len(r) != 1 {
			t.Fatalf("want one running web: %s", h.Describe(tasks))
		}
		return r[0].ID + " " + r[0].ContainerID
	}

	t.Run("top lists the task's process", func(t *testing.T) {
		out := run("top", "web").Stdout
		if !strings.Contains(out, project+"-web-1") || !strings.Contains(out, "PID") || len(h.Lines(out)) < 3 {
			t.Fatalf("top web:\n%s\nwant the task's name, a header and a process", out)
		}
	})

	// ps --status paused lists exactly the tasks of service that are
	// paused (want: its running task, or none).
	pausedIs := func(service string, want bool) func() error {
		return func() error {
			tasks, err := c.PS(t, project)
			if err != nil {
				return err
			}
			var ids []string
			for _, tk := range h.Running(tasks, service) {
				ids = append(ids, tk.ID)
			}
			out := h.Lines(run("ps", "-q", "--status", "paused").Stdout)
			if got := len(out) == 1 && len(ids) == 1 && out[0] == ids[0]; got != want || (!want && len(out) > 0) {
				return fmt.Errorf("ps -q --status paused: %q; %s's running tasks %v, paused: %v", out, service, ids, want)
			}
			return nil
		}
	}
	t.Run("pause and unpause", func(t *testing.T) {
		cid := strings.Fields(webTask())[1]
		run("pause", "web")
		if st, err := h.Docker("inspect", "-f", "{{.State.Paused}}", cid); err != nil || st != "true" {
			t.Fatalf("after pause: paused=%q (%v), want true", st, err)
		}
		h.WaitFor(t, 30*time.Second, "ps --status paused shows web", pausedIs("web", true))
		if out := run("ps", "--format", "{{.Name}} {{.State}} {{.Status}}").Stdout; !strings.Contains(out, project+"-web-1 paused Up") || !strings.Contains(out, "(Paused)") {
			t.Fatalf("ps of a paused task:\n%s", out)
		}
		run("unpause", "web")
		if st, err := h.Docker("inspect", "-f", "{{.State.Paused}}", cid); err != nil || st != "false" {
			t.Fatalf("after unpause: paused=%q (%v), want false", st, err)
		}
		h.WaitFor(t, 30*time.Second, "ps --status paused empty", pausedIs("web", false))
		h.HTTPGet(t, url, 30*time.Second)
	})

	t.Run("exec driver: top, pause and unpause", func(t *testing.T) {
		h.WaitFor(t, time.Minute, "proc running", c.ExpectRunning(t, project, "proc", 1))
		tasks, err := c.PS(t, project)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := h.TaskPID(h.Running(tasks, "proc")[0])
		if err != nil {
			t.Fatal(err)
		}
		if out := run("top", "proc").Stdout; !strings.Contains(out, strconv.Itoa(pid)) || !strings.Contains(out, bin) {
			t.Fatalf("top proc:\n%s\nwant pid %d running %s", out, pid, bin)
		}
		state := func() string {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				t.Fatal(err)
			}
			s := string(b)
			return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
		}
		run("pause", "proc")
		h.WaitFor(t, 10*time.Second, "proc stopped by SIGSTOP", func() error {
			if st := state(); st != "T" {
				return fmt.Errorf("state %s", st)
			}
			return nil
		})
		h.WaitFor(t, 30*time.Second, "ps --status paused shows proc", pausedIs("proc", true))
		run("unpause", "proc")
		h.WaitFor(t, 10*time.Second, "proc continued", func() error {
			if st := state(); st == "T" {
				return fmt.Errorf("state %s", st)
			}
			return nil
		})
		h.WaitFor(t, 30*time.Second, "ps --status paused empty", pausedIs("proc", false))
	})

	t.Run("kill -s TERM and the restart policy", func(t *testing.T) {
		before := webTask()
		out := run("kill", "-s", "TERM", "web").Stdout
		if !strings.Contains(out, "Killed") {
			t.Fatalf("kill: %q", out)
		}
		h.WaitFor(t, time.Minute, "a new web task after kill", func() error {
			tasks, err := c.PS(t, project)
			if err != nil {
				return err
			}
			r := h.Running(tasks, "web")
			if len(r) != 1 || r[0].ID+" "+r[0].ContainerID == before {
				return fmt.Errorf("no replacement yet: %s", h.Describe(tasks))
			}
			return nil
		})
	})

	t.Run("stop holds through a server restart, start brings it back", func(t *testing.T) {
		out := run("stop", "-t", "1", "web").Stdout
		if !strings.Contains(out, "Stopped") {
			t.Fatalf("stop: %q", out)
		}
		h.WaitFor(t, 30*time.Second, "no web task running", c.ExpectRunning(t, project, "web", 0))
		c.Restart(t, syscall.SIGTERM)
		// A reconcile that did something after the restart (job scaled)
		// placed nothing for web.
		run("scale", "job=2")
		h.WaitFor(t, time.Minute, "two jobs", c.ExpectRunning(t, project, "job", 2))
		if err := c.ExpectRunning(t, project, "web", 0)(); err != nil {
			t.Fatalf("after a server restart: %v", err)
		}
		run("start", "web")
		h.WaitFor(t, time.Minute, "web back", c.ExpectRunning(t, project, "web", 1))
		h.HTTPGet(t, url, 30*time.Second)
		run("scale", "job=1")
	})

	t.Run("restart replaces, rm removes the stopped", func(t *testing.T) {
		before := webTask()
		run("restart", "web")
		if now := webTask(); now == before {
			t.Fatalf("restart left web's task %s in place", now)
		}
		// The replaced task drains and stops; then it is a stopped one.
		h.WaitFor(t, 30*time.Second, "the replaced web task stopped", c.ExpectRunning(t, project, "web", 1))
		var stopped []string // containers of stopped tasks
		for _, tk := range psAll(t, c, project) {
			if tk.Service == "web" && tk.DesiredState == "shutdown" && tk.State.Terminal() && tk.ContainerID != "" {
				stopped = append(stopped, tk.ContainerID)
			}
		}
		out := run("rm", "-f", "web").Stdout
		if !strings.Contains(out, "Removed") || len(stopped) == 0 {
			t.Fatalf("rm -f web: %q, want the stopped tasks %v removed", out, stopped)
		}
		tasks := psAll(t, c, project)
		for _, tk := range tasks {
			if tk.Service == "web" && tk.DesiredState == "shutdown" && tk.State.Terminal() {
				t.Fatalf("rm left a stopped task: %s", h.Describe(tasks))
			}
		}
		h.WaitFor(t, 30*time.Second, "the removed tasks' containers gone", func() error {
			for _, id := range stopped {
				if _, err := h.Docker("inspect", "-f", "{{.Id}}", id); err == nil {
					return fmt.Errorf("container %s is still there", id)
				}
			}
			return nil
		})
	})

	t.Run("up starts a stopped service", func(t *testing.T) {
		run("stop", "proc")
		h.WaitFor(t, 30*time.Second, "no proc running", c.ExpectRunning(t, project, "proc", 0))
		run("up")
		h.WaitFor(t, time.Minute, "proc back after up", c.ExpectRunning(t, project, "proc", 1))
	})

	t.Run("wait returns the exit code", func(t *testing.T) {
		h.WaitFor(t, time.Minute, "one job", c.ExpectRunning(t, project, "job", 1))
		done := make(chan h.Result, 1)
		go func() { done <- c.Run(t, dir, "-p", project, "wait", "job") }()
		h.HTTPGet(t, fmt.Sprintf("http://127.0.0.1:%d/exit?code=3", jobPort), 30*time.Second)
		select {
		case r := <-done:
			if r.Code != 3 || !strings.Contains(r.Stdout, "exited with code 3") {
				t.Fatalf("wait job: %s; want exit code 3", r)
			}
		case <-time.After(time.Minute):
			t.Fatal("berth wait job did not return within a minute of the exit")
		}
	})
}

// psAll is every task the cluster keeps, finished ones too (as berth ps
// -a lists them; c.PS reads them from the API in their stored form).
func psAll(t *testing.T, c *h.Cluster, project string) []*types.Task {
	t.Helper()
	tasks, err := c.PS(t, project)
	if err != nil {
		t.Fatal(err)
	}
	return tasks
}
