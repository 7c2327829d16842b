package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// PS lists the tasks of project from the manager's API, as stored (the
// CLI's ps -o json prints berth's stable summaries, without the container
// IDs and states of the stored form these tests read). Every task not yet
// finished is there, as in berth ps; so are the finished ones.
func (c *Cluster) PS(tb testing.TB, project string) ([]*types.Task, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tasks, _, err := c.Client().ListTasks(ctx, api.TaskQuery{App: project})
	if err != nil {
		return nil, fmt.Errorf("list the tasks of %s: %w", project, err)
	}
	return tasks, nil
}

// ExpectRunning is a WaitFor condition: service has exactly n running tasks
// (healthy, where it has a healthcheck) and no other task of it is still
// meant to run or on its way.
func (c *Cluster) ExpectRunning(tb testing.TB, project, service string, n int) func() error {
	return func() error {
		tasks, err := c.PS(tb, project)
		if err != nil {
			return err
		}
		up := len(Running(tasks, service))
		live := 0
		for _, t := range tasks {
			if t.Service == service && !t.State.Terminal() {
				live++
			}
		}
		if up != n || live != n {
			return fmt.Errorf("%s: %d running, %d not finished, want %d: %s", service, up, live, n, Describe(tasks))
		}
		return nil
	}
}

// Running returns the tasks of service that run and are meant to, and are
// healthy when the service has a healthcheck.
func Running(tasks []*types.Task, service string) []*types.Task {
	var out []*types.Task
	for _, t := range tasks {
		if t.Service != service || t.State != types.TaskRunning || t.DesiredState != types.DesiredRunning {
			continue
		}
		if t.Health != types.HealthNone && t.Health != types.HealthHealthy {
			continue
		}
		out = append(out, t)
	}
	return out
}

// Describe renders tasks on one line, for failure messages.
func Describe(tasks []*types.Task) string {
	parts := make([]string, 0, len(tasks))
	for _, t := range tasks {
		s := fmt.Sprintf("%s=%s/%s", t.Name(), t.State, t.DesiredState)
		if t.Health != "" {
			s += "(" + string(t.Health) + ")"
		}
		for _, why := range []string{t.Error, t.PendingReason} {
			if why != "" {
				s += "[" + why + "]"
			}
		}
		parts = append(parts, s)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TaskPID is the host process ID of an exec-driver task ("pid:<n>").
func TaskPID(t *types.Task) (int, error) {
	s, ok := strings.CutPrefix(t.ContainerID, "pid:")
	if !ok {
		return 0, fmt.Errorf("task %s has no process ID (container id %q)", t.Name(), t.ContainerID)
	}
	return strconv.Atoi(s)
}

// ProcessAlive reports whether pid names a live process (not a zombie).
func ProcessAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "123 (app) S ...".
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

// KillProcessesOf kills every process whose executable is bin: what a test
// leaves when its server dies before it stops its tasks.
func KillProcessesOf(bin string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == bin {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
