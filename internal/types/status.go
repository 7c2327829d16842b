package types

import "time"

// ServiceState is the controller's verdict on a service's current version.
type ServiceState string

const (
	// ServiceConverging: replicas are still on their way (or waiting for a
	// dependency, or for room on a node).
	ServiceConverging ServiceState = "converging"
	// ServiceUp: every replica is up (see Task.Up) or, for a one-shot, done.
	ServiceUp ServiceState = "up"
	// ServiceFailed: a replica failed in a way waiting will not mend: it
	// crash-loops, exited non-zero with no restart to come, was rejected by
	// its driver, or its health check failed its retries.
	ServiceFailed ServiceState = "failed"
)

// ServiceStatus is the controller's verdict on one service, stored with the
// app (Service.Status) and read by `up`, `scale` and `ps`. It describes the
// service at Version; a status of another version is stale and means
// nothing yet. Users never write it: a submission drops it.
type ServiceStatus struct {
	Version uint64       `json:"version"`
	State   ServiceState `json:"state"`
	// Reason says what failed, as one sentence naming the replica.
	Reason string `json:"reason,omitempty"`
	// TaskID is the task whose failure decided the verdict: its logs
	// explain it.
	TaskID   string `json:"task_id,omitempty"`
	TaskName string `json:"task_name,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	// HealthOutput is the failing health check's last output.
	HealthOutput string    `json:"health_output,omitempty"`
	Since        time.Time `json:"since"`
}

// Same reports whether two verdicts say the same thing (Since aside).
func (s *ServiceStatus) Same(o *ServiceStatus) bool {
	if s == nil || o == nil {
		return s == o
	}
	codeEq := (s.ExitCode == nil) == (o.ExitCode == nil) && (s.ExitCode == nil || *s.ExitCode == *o.ExitCode)
	return s.Version == o.Version && s.State == o.State && s.Reason == o.Reason &&
		s.TaskID == o.TaskID && s.TaskName == o.TaskName && s.HealthOutput == o.HealthOutput && codeEq
}

// MaxHealthOutput bounds the health check output a driver reports, as the
// Docker engine bounds what it keeps of each probe.
const MaxHealthOutput = 4096
