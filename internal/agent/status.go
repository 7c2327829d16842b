package agent

import (
	"maps"
	"strconv"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// observed turns what a driver saw of a task into the state the manager
// records. A task the agent was asked to shut down ends as shutdown whatever
// its exit code; otherwise exit 0 is complete and anything else failed.
func observed(st *driver.Status, desired types.TaskState) types.TaskStatus {
	ts := types.TaskStatus{
		TaskID:      st.TaskID,
		ContainerID: st.ContainerID,
		StartedAt:   st.StartedAt,
	}
	switch st.State {
	case driver.StateCreated:
		ts.State = types.TaskStarting
	case driver.StateRunning:
		ts.State = types.TaskRunning
		ts.Health, ts.HealthOutput = st.Health, st.HealthOutput
		ts.Addresses = st.Addresses
		ts.Paused = st.Paused
	default:
		code := st.ExitCode
		ts.ExitCode = &code
		ts.FinishedAt = st.FinishedAt
		ts.State, ts.Error = exitState(code, st.Error, desired)
	}
	return ts
}

func exitState(code int, reason string, desired types.TaskState) (types.TaskState, string) {
	switch {
	case desired == types.DesiredShutdown:
		return types.TaskShutdown, ""
	case code == 0:
		return types.TaskComplete, ""
	}
	msg := "exit code " + strconv.Itoa(code)
	if reason != "" {
		// The driver's reason, such as an out-of-memory kill.
		msg += ": " + reason
	}
	return types.TaskFailed, msg
}

// driverRank orders driver states so a late event cannot move a task back.
func driverRank(s driver.State) int {
	switch s {
	case driver.StateCreated:
		return 0
	case driver.StateRunning:
		return 1
	}
	return 2
}

// sameStatus reports whether two reports carry the same news.
func sameStatus(a, b types.TaskStatus) bool {
	codeEq := (a.ExitCode == nil) == (b.ExitCode == nil) &&
		(a.ExitCode == nil || *a.ExitCode == *b.ExitCode)
	return a.TaskID == b.TaskID && a.State == b.State && a.Paused == b.Paused && a.Health == b.Health && a.HealthOutput == b.HealthOutput &&
		a.Error == b.Error && a.ContainerID == b.ContainerID && a.Progress == b.Progress && codeEq &&
		a.StartedAt.Equal(b.StartedAt) && a.FinishedAt.Equal(b.FinishedAt) && maps.Equal(a.Addresses, b.Addresses)
}

// rank is TaskState.Rank, reading a state the manager left empty as
// assigned rather than as a terminal one.
func rank(s types.TaskState) int {
	if s == "" {
		return types.TaskAssigned.Rank()
	}
	return s.Rank()
}
