package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

func TestObserved(t *testing.T) {
	started := time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		st      driver.Status
		desired types.TaskState
		state   types.TaskState
		health  types.Health
		output  string
		code    *int
		err     string
	}{
		{name: "created", st: driver.Status{State: driver.StateCreated}, desired: types.DesiredRunning, state: types.TaskStarting},
		{name: "running healthy", st: driver.Status{State: driver.StateRunning, Health: types.HealthHealthy}, desired: types.DesiredRunning, state: types.TaskRunning, health: types.HealthHealthy},
		{name: "unhealthy with the probe's output", st: driver.Status{State: driver.StateRunning, Health: types.HealthUnhealthy, HealthOutput: "refused"}, desired: types.DesiredRunning, state: types.TaskRunning, health: types.HealthUnhealthy, output: "refused"},
		{name: "exit 0", st: driver.Status{State: driver.StateExited}, desired: types.DesiredRunning, state: types.TaskComplete, code: ptr(0)},
		{name: "exit 1", st: driver.Status{State: driver.StateExited, ExitCode: 1}, desired: types.DesiredRunning, state: types.TaskFailed, code: ptr(1), err: "exit code 1"},
		{name: "oom", st: driver.Status{State: driver.StateExited, ExitCode: 137, Error: "out of memory"}, desired: types.DesiredRunning, state: types.TaskFailed, code: ptr(137), err: "exit code 137: out of memory"},
		{name: "stopped", st: driver.Status{State: driver.StateExited, ExitCode: 143}, desired: types.DesiredShutdown, state: types.TaskShutdown, code: ptr(143)},
		{name: "unhealthy hidden once exited", st: driver.Status{State: driver.StateExited, ExitCode: 1, Health: types.HealthUnhealthy}, desired: types.DesiredRunning, state: types.TaskFailed, code: ptr(1), err: "exit code 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.st.TaskID, tt.st.ContainerID, tt.st.StartedAt = "t1", "c1", started
			got := observed(&tt.st, tt.desired)
			want := types.TaskStatus{TaskID: "t1", State: tt.state, Health: tt.health, HealthOutput: tt.output, ExitCode: tt.code, Error: tt.err, ContainerID: "c1", StartedAt: started}
			if !sameStatus(got, want) {
				t.Errorf("observed = %+v, want %+v", got, want)
			}
		})
	}
}

func TestMemTotal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meminfo")
	if err := os.WriteFile(path, []byte("MemFree:  100 kB\nMemTotal:  2048 kB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := memTotal(path); err != nil || got != 2048*1024 {
		t.Errorf("memTotal = %d, %v; want %d", got, err, 2048*1024)
	}
	if err := os.WriteFile(path, []byte("MemFree: 1 kB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := memTotal(path); err == nil {
		t.Error("memTotal without MemTotal: want an error")
	}
}

func ptr(n int) *int { return &n }
