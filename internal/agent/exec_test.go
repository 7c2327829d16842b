//go:build linux

package agent

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// TestWithExecDriver runs real host processes through the exec driver the
// agent builds itself, across an agent restart.
func TestWithExecDriver(t *testing.T) {
	m := newFakeManager(t)
	cfg := testConfig(t, m, newFakeDriver("unused"))
	cfg.Drivers, cfg.DriverOverrides = []string{types.DriverExec}, nil
	a1, stop1 := runAgent(t, cfg)

	sleeper := &types.Service{Name: "sleeper", Driver: types.DriverExec, Version: 1,
		Command: []string{"/bin/sh", "-c", "echo hello from berth; exec sleep 60"}, StopGracePeriod: 5 * time.Second}
	crasher := &types.Service{Name: "crasher", Driver: types.DriverExec, Version: 1,
		Command: []string{"/bin/sh", "-c", "exit 3"}}
	m.addService("app", sleeper)
	m.addService("app", crasher)
	sleepers := m.addTasks(a1.NodeID(), "app", sleeper, "sleeper", 2)
	crashers := m.addTasks(a1.NodeID(), "app", crasher, "crasher", 1)
	t.Cleanup(func() { killGroups(m, sleepers) }) // leave no process behind, whatever happened

	waitFor(t, "sleepers running", func() bool { return m.inState(types.TaskRunning, sleepers...) })
	waitFor(t, "the crasher failed", func() bool { return m.inState(types.TaskFailed, crashers...) })
	if got := m.task(crashers[0]); got.ExitCode == nil || *got.ExitCode != 3 || got.Error != "exit code 3" {
		t.Errorf("crasher: exit code %v, error %q; want 3, \"exit code 3\"", got.ExitCode, got.Error)
	}
	pid := m.task(sleepers[0]).ContainerID
	c := managerHTTP(t, m)
	waitFor(t, "the sleeper's output in its logs", func() bool {
		return strings.Contains(fetchLogs(t, c, a1.Addr(), sleepers[0]), "hello from berth")
	})
	stop1()

	// The restarted agent adopts the processes: same node, same pid.
	a2, _ := runAgent(t, cfg)
	if a2.NodeID() != a1.NodeID() {
		t.Fatalf("node ID after restart = %s, want %s", a2.NodeID(), a1.NodeID())
	}
	m.setDesired(types.DesiredShutdown, sleepers[1])
	waitFor(t, "the second sleeper shut down", func() bool { return m.inState(types.TaskShutdown, sleepers[1]) })
	if got := m.task(sleepers[0]); got.State != types.TaskRunning || got.ContainerID != pid {
		t.Errorf("adopted task: state %s, process %s; want running as %s", got.State, got.ContainerID, pid)
	}
	m.setDesired(types.DesiredShutdown, sleepers[0])
	waitFor(t, "the first sleeper shut down", func() bool { return m.inState(types.TaskShutdown, sleepers[0]) })
}

func fetchLogs(t *testing.T, c *http.Client, addr, id string) string {
	t.Helper()
	resp, err := c.Get("https://" + addr + strings.Replace(api.PathAgentTaskLogs, "{id}", id, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// killGroups kills the process group of each task the manager knows a pid of.
func killGroups(m *fakeManager, ids []string) {
	for _, id := range ids {
		pid, err := strconv.Atoi(strings.TrimPrefix(m.task(id).ContainerID, "pid:"))
		if err == nil && pid > 1 {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
}
