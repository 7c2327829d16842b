package api

import "encoding/json"

// The types below are what berth's CLI prints for scripts (ps, ls, service
// ls, inspect with -o json|yaml or --format json). They are stable: a field
// keeps its name and meaning across releases; the stored structs of
// internal/types may change under them. Names follow docker compose's JSON
// where the meaning is the same (ps: ID, Name, Service, State, Publishers),
// so a script written for `docker compose ps --format json` reads them.

// TaskSummary is one task as `berth ps` shows it.
type TaskSummary struct {
	ID      string `json:"ID"`
	Name    string `json:"Name"` // PROJECT-SERVICE-N, as Compose names containers
	Project string `json:"Project"`
	Service string `json:"Service"`
	Image   string `json:"Image"`
	Command string `json:"Command"`
	// State is Compose's word: created, running, restarting, removing,
	// exited or dead (see TaskState for berth's own).
	State string `json:"State"`
	// Status is docker's sentence: "Up 2 minutes (healthy)", "Exited (1)
	// 3 minutes ago", "Created".
	Status string `json:"Status"`
	Health string `json:"Health"` // "", starting, healthy, unhealthy
	// ExitCode is the code the task exited with (0 while it runs).
	ExitCode   int             `json:"ExitCode"`
	CreatedAt  string          `json:"CreatedAt"`  // "2026-11-25 01:58:30 +0000 UTC", as docker writes it
	RunningFor string          `json:"RunningFor"` // "2 minutes ago"
	Ports      string          `json:"Ports"`      // "127.0.0.1:8080->80/tcp, 9000/tcp"
	Publishers []PortPublisher `json:"Publishers"`

	// berth's own: where the task runs and what the cluster wants of it.
	Node         string `json:"Node"` // "" while not placed
	Slot         int    `json:"Slot"` // the replica number; 0 for a global service
	Version      uint64 `json:"Version"`
	TaskState    string `json:"TaskState"`    // pending, assigned, starting, running, complete, failed, shutdown, rejected, lost
	DesiredState string `json:"DesiredState"` // running or shutdown
	Restarts     int    `json:"Restarts"`
	Error        string `json:"Error,omitempty"`
	// Detail says why a task is in its state, as the table's STATE column
	// ("pending: 0/2 nodes have 4 GB free").
	Detail string `json:"Detail,omitempty"`
}

// PortPublisher is one port of a task, as Compose's ps lists Publishers.
type PortPublisher struct {
	URL           string `json:"URL"` // the host address; "" when not published
	TargetPort    int    `json:"TargetPort"`
	PublishedPort int    `json:"PublishedPort"` // 0: only exposed inside the app
	Protocol      string `json:"Protocol"`
}

// AppSummary is one app as `berth ls` shows it (Compose's ls names).
type AppSummary struct {
	Name string `json:"Name"`
	// Status counts the current tasks by Compose state: "running(2),
	// exited(1)".
	Status   string   `json:"Status"`
	Version  uint64   `json:"Version"`
	Services []string `json:"Services"`
	Deleting bool     `json:"Deleting,omitempty"`
	// UpdatedAt is RFC 3339.
	UpdatedAt string `json:"UpdatedAt"`
}

// ServiceSummary is one service as `berth service ls` shows it (Swarm's
// service ls, with the app it belongs to).
type ServiceSummary struct {
	Name     string `json:"Name"` // APP_SERVICE, as a Swarm stack names it
	App      string `json:"App"`
	Service  string `json:"Service"`
	Mode     string `json:"Mode"` // replicated or global
	Running  int    `json:"Running"`
	Desired  int    `json:"Desired"`  // for a global service, the nodes it runs on
	Replicas string `json:"Replicas"` // "2/3", as Swarm writes it
	Image    string `json:"Image"`
	Ports    string `json:"Ports"`
	Version  uint64 `json:"Version"`
	// Verdict is the controller's judgement of the current version
	// ("converged", "failed: ...") or "".
	Verdict string `json:"Verdict"`
}

// ServiceInspection is `berth inspect SERVICE -o json`: the service's spec
// (as `berth config --berth` writes it, durations as Compose writes them:
// "1m30s"), its deployments and its current tasks.
type ServiceInspection struct {
	App         string              `json:"App"`
	Service     json.RawMessage     `json:"Service"`
	Verdict     string              `json:"Verdict"`
	Deployments []DeploymentSummary `json:"Deployments"`
	Tasks       []TaskSummary       `json:"Tasks"`
}

// TaskInspection is `berth inspect TASK -o json`: the task's summary and
// what its node last reported of it.
type TaskInspection struct {
	TaskSummary
	ServiceSpec  json.RawMessage   `json:"ServiceSpec"`
	ContainerID  string            `json:"ContainerID,omitempty"`
	Addresses    map[string]string `json:"Addresses,omitempty"`
	HealthOutput string            `json:"HealthOutput,omitempty"`
	StartedAt    string            `json:"StartedAt,omitempty"`
	FinishedAt   string            `json:"FinishedAt,omitempty"`
}

// ImageSummary is one task's image as `berth images -o json` shows it
// (docker compose images' names where they mean the same).
type ImageSummary struct {
	ContainerName string `json:"ContainerName"` // the task's name
	Service       string `json:"Service"`
	Repository    string `json:"Repository"`
	Tag           string `json:"Tag"`
	Image         string `json:"Image"`      // as the Compose file names it
	PulledFrom    string `json:"PulledFrom"` // the cluster registry's copy, for an image up pushed
}

// DeploymentSummary is a Deployment as the CLI prints it (deployments -o
// json, inspect -o json): the same fields, with its durations as Compose
// writes them ("5s") rather than the wire's nanoseconds. The outer fields
// shadow the embedded ones of the same JSON name.
type DeploymentSummary struct {
	*Deployment
	Delay   string `json:"delay"`
	Monitor string `json:"monitor"`
}

// SummarizeDeployments is ds as DeploymentSummary values.
func SummarizeDeployments(ds []*Deployment) []DeploymentSummary {
	out := make([]DeploymentSummary, 0, len(ds))
	for _, d := range ds {
		out = append(out, DeploymentSummary{Deployment: d, Delay: d.Delay.String(), Monitor: d.Monitor.String()})
	}
	return out
}
