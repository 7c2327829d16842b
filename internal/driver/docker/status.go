package docker

import (
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// statusOf converts an inspected container into the driver's Status.
func statusOf(c container.InspectResponse) *driver.Status {
	labels := map[string]string{}
	if c.Config != nil {
		labels = c.Config.Labels
	}
	st := &driver.Status{
		TaskID:      labels[LabelTask],
		App:         labels[LabelApp],
		Service:     labels[LabelService],
		ContainerID: c.ID,
		State:       driver.StateExited,
	}
	s := c.State
	if s == nil {
		return st
	}
	st.State = stateOf(s.Status)
	st.StartedAt = parseTime(s.StartedAt)
	if st.State == driver.StateRunning {
		st.Addresses = addressesOf(c)
		st.Paused = s.Paused
	}
	if st.State == driver.StateExited {
		st.ExitCode = s.ExitCode
		st.FinishedAt = parseTime(s.FinishedAt)
	}
	if s.Health != nil {
		st.Health = healthOf(s.Health.Status)
		if st.Health == types.HealthUnhealthy {
			st.HealthOutput = lastProbeOutput(s.Health)
		}
	}
	switch {
	case s.OOMKilled:
		st.Error = "out of memory: the container was OOM killed"
	case s.Error != "":
		st.Error = s.Error
	}
	return st
}

// createdStatus is the status of a created, never started container, from
// its listing.
func createdStatus(c container.Summary) *driver.Status {
	return &driver.Status{
		TaskID:      c.Labels[LabelTask],
		App:         c.Labels[LabelApp],
		Service:     c.Labels[LabelService],
		ContainerID: c.ID,
		State:       driver.StateCreated,
	}
}

func stateOf(s container.ContainerState) driver.State {
	switch s {
	case container.StateCreated:
		return driver.StateCreated
	case container.StateRunning, container.StatePaused, container.StateRestarting:
		return driver.StateRunning
	}
	return driver.StateExited
}

func healthOf(h container.HealthStatus) types.Health {
	switch h {
	case container.Starting:
		return types.HealthStarting
	case container.Healthy:
		return types.HealthHealthy
	case container.Unhealthy:
		return types.HealthUnhealthy
	}
	return types.HealthNone
}

// lastProbeOutput is what the newest probe printed (the engine keeps the
// last few, oldest first), trimmed and bounded, so `up` can show why a
// check fails without `docker inspect`.
func lastProbeOutput(h *container.Health) string {
	for i := len(h.Log) - 1; i >= 0; i-- {
		if r := h.Log[i]; r != nil {
			out := strings.TrimSpace(r.Output)
			if len(out) > types.MaxHealthOutput {
				out = out[:types.MaxHealthOutput]
			}
			return out
		}
	}
	return ""
}

// parseTime reads the engine's timestamps; its zero ("0001-01-01T00:00:00Z")
// stays the zero time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
