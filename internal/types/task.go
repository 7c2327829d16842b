package types

import (
	"strconv"
	"time"
)

// TaskState is where a task is in its life. States only move forward, in
// this order; the terminal ones end a task (a restart is a new task).
type TaskState string

const (
	TaskPending  TaskState = "pending"  // not yet placed; PendingReason says why
	TaskAssigned TaskState = "assigned" // placed on a node; the agent has not acted yet
	TaskStarting TaskState = "starting" // agent is preparing or starting it
	TaskRunning  TaskState = "running"

	TaskComplete TaskState = "complete" // exited 0
	TaskFailed   TaskState = "failed"   // exited non-zero, or unhealthy and stopped
	TaskShutdown TaskState = "shutdown" // stopped because desired state said so
	TaskRejected TaskState = "rejected" // the driver could not start it (e.g. image missing)
	TaskLost     TaskState = "lost"     // its node went down
)

// Terminal reports whether a task in state s will never run again.
func (s TaskState) Terminal() bool {
	switch s {
	case TaskComplete, TaskFailed, TaskShutdown, TaskRejected, TaskLost:
		return true
	}
	return false
}

// Rank orders states so that observed state never moves backwards.
func (s TaskState) Rank() int {
	switch s {
	case TaskPending:
		return 0
	case TaskAssigned:
		return 1
	case TaskStarting:
		return 2
	case TaskRunning:
		return 3
	}
	return 4
}

// Desired states of a task.
const (
	DesiredRunning  TaskState = "running"
	DesiredShutdown TaskState = "shutdown"
)

// Health of a running task with a healthcheck.
type Health string

const (
	HealthNone      Health = ""          // no healthcheck
	HealthStarting  Health = "starting"  // checks not passed yet
	HealthHealthy   Health = "healthy"   // last checks passed
	HealthUnhealthy Health = "unhealthy" // Retries consecutive checks failed
)

// Task is one replica of a service on one node.
type Task struct {
	ID      string `json:"id"`
	App     string `json:"app"`
	Service string `json:"service"`
	// Slot is the replica number (1..Replicas) in replicated mode; 0 in
	// global mode, where NodeID identifies the replica instead.
	Slot           int    `json:"slot"`
	ServiceVersion uint64 `json:"service_version"`
	NodeID         string `json:"node_id,omitempty"`

	DesiredState TaskState `json:"desired_state"`
	State        TaskState `json:"state"`
	Health       Health    `json:"health,omitempty"`
	// HealthOutput is the output of the last failing health check probe,
	// as the driver reported it with an unhealthy health.
	HealthOutput string `json:"health_output,omitempty"`
	// HealthyAt is when the task was first reported healthy: a replica that
	// served once and then failed is a runtime event, not a failed deploy.
	HealthyAt time.Time `json:"healthy_at,omitzero"`
	// Paused says the running task is frozen (berth pause), as its agent
	// last saw it.
	Paused   bool   `json:"paused,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Error    string `json:"error,omitempty"`
	// PendingReason explains why the scheduler could not place the task.
	PendingReason string `json:"pending_reason,omitempty"`
	// Progress says what a starting task waits for, as its agent last
	// reported it ("pulling image web: 3 of 5 layers, 40 MB of 100 MB");
	// each later report replaces it, so it is gone once the task runs.
	Progress    string `json:"progress,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
	// Addresses are the task's overlay addresses by cluster network key
	// (the Docker network name: "<app>_<network>", or an external
	// network's name), as its agent reported them.
	Addresses map[string]string `json:"addresses,omitempty"`
	// Attempt counts the restarts of this slot before this task (0: first).
	Attempt int `json:"attempt"`
	// StopGrace, when set, is how long the task has to stop once told to
	// shut down, instead of its service's stop_grace_period: up -t or down
	// -t gave it.
	StopGrace time.Duration `json:"stop_grace,omitempty"`

	CreatedAt   time.Time `json:"created_at"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// Name is the task's human name: "<app>-<service>-<slot>" or, in global
// mode, "<app>-<service>-<node id prefix>".
func (t *Task) Name() string {
	if t.Slot == 0 {
		n := t.NodeID
		if len(n) > 8 {
			n = n[:8]
		}
		return t.App + "-" + t.Service + "-" + n
	}
	return t.App + "-" + t.Service + "-" + strconv.Itoa(t.Slot)
}

// MayHaveProcess reports whether a process of t may be on a node: it was
// placed (left pending) and has not ended. A one-off (OneOff) without one
// is removed at once.
func (t *Task) MayHaveProcess() bool {
	return !t.State.Terminal() && t.State != TaskPending
}

// ServiceID is "<app>/<service>", the key of a service across apps.
func ServiceID(app, service string) string { return app + "/" + service }

// TaskStatus is an agent's report of one task's observed state.
type TaskStatus struct {
	TaskID string    `json:"task_id"`
	State  TaskState `json:"state"`
	Health Health    `json:"health,omitempty"`
	// HealthOutput is the failing probe's output (at most MaxHealthOutput
	// bytes), sent with an unhealthy health.
	HealthOutput string `json:"health_output,omitempty"`
	// Paused: the running task is frozen (berth pause).
	Paused      bool      `json:"paused,omitempty"`
	ExitCode    *int      `json:"exit_code,omitempty"`
	Error       string    `json:"error,omitempty"`
	ContainerID string    `json:"container_id,omitempty"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	// Progress is what a starting task waits for (at most MaxProgress
	// bytes), such as its image's pull.
	Progress string `json:"progress,omitempty"`
	// Addresses are the task's overlay addresses by network key, sent
	// once it runs (see Task.Addresses); nil leaves the recorded ones.
	Addresses map[string]string `json:"addresses,omitempty"`
}

// MaxProgress bounds a task's progress message.
const MaxProgress = 512
