// Package driver defines how an agent runs a task, whatever runs it: a Docker
// container (driver/docker) or a host process (driver/exec). Drivers know nothing of Raft or the manager; the agent hands
// them a TaskConfig and asks what became of it.
//
// Contract for callers (the agent):
//   - Start is idempotent per task ID: if the task already exists (the agent
//     restarted), Start adopts it and returns its status instead of starting
//     a second copy. Start returns once the task runs or failed to start.
//   - List returns every task this driver holds for this node, running or
//     exited, so a restarted agent re-attaches instead of duplicating work.
//   - Stop stops a task with its stop signal and grace period, then kills it;
//     Remove deletes what is left (container, files). Both succeed on a task
//     that is already gone.
//   - Events delivers a Status whenever a task exits or its health changes;
//     the agent also polls List, so a missed event costs latency only.
package driver

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// ErrNotFound is returned for a task the driver does not hold.
var ErrNotFound = errors.New("task not found in driver")

// ErrImageNotFound is returned (wrapped) when a task's image is missing on
// the node and cannot be pulled.
var ErrImageNotFound = errors.New("image not found")

// TaskConfig is everything a driver needs to run one task.
type TaskConfig struct {
	Task    *types.Task
	Service *types.Service
	NodeID  string
	// Resources of the task's app that the service refers to.
	Networks map[string]*types.Network
	Volumes  map[string]*types.Volume
	Secrets  map[string]*types.Secret
	Configs  map[string]*types.Secret
	// Slices, by Compose network name, give each network the node's slice
	// of the cluster overlay: the driver makes the network with the slice
	// as its subnet, the slice's gateway and the MTU. A network without a
	// slice is a local one, made as the engine likes.
	Slices map[string]Slice
	// Overlay says the agent serves the task's networking: DNS (the
	// container's resolvers are DNS, and service names are not Docker
	// aliases, since other nodes' replicas are not on this engine) and the
	// routing mesh (ingress ports are not published by the driver; host
	// mode ports are).
	Overlay bool
	DNS     []string
	// Progress, when set, is told what a Start waits for while it waits
	// (an image pull: "pulling image web: 3 of 5 layers, 40 MB of 100
	// MB"), at most about once a second. It must not block.
	Progress func(msg string)
}

// Slice is a node's part of a cluster network.
type Slice struct {
	Subnet  netip.Prefix
	Gateway netip.Addr
	MTU     int
}

// State of a task inside a driver.
type State string

const (
	StateCreated State = "created" // exists, not started
	StateRunning State = "running"
	StateExited  State = "exited"
)

// Status is what a driver observes of one task.
type Status struct {
	TaskID  string
	App     string
	Service string
	State   State
	// Paused says a running task is frozen (berth pause: the engine's
	// freezer, or a SIGSTOPped process).
	Paused bool
	Health types.Health
	// HealthOutput is the last failing probe's output, with an unhealthy
	// Health (at most types.MaxHealthOutput bytes).
	HealthOutput string
	ExitCode     int
	Error        string
	ContainerID  string // container ID or "pid:<n>"
	// Addresses are the task's addresses on its networks by Docker
	// network name (the cluster network key), once it runs.
	Addresses  map[string]string
	StartedAt  time.Time
	FinishedAt time.Time
}

// LogOptions select what Logs writes.
type LogOptions struct {
	Follow     bool
	Tail       int // 0: all
	Timestamps bool
	// Since and Until bound the lines by when they were written (zero: no
	// bound). Only a driver that keeps timestamps can (TimedLogs).
	Since, Until time.Time
}

// TimedLogs is a driver whose logs carry the time of each line, so Logs
// honours LogOptions.Since and Until.
type TimedLogs interface {
	TimedLogs() bool
}

// Driver runs tasks on one node.
type Driver interface {
	Name() string
	Start(ctx context.Context, cfg *TaskConfig) (*Status, error)
	Stop(ctx context.Context, taskID string, grace time.Duration, signal string) error
	Remove(ctx context.Context, taskID string) error
	Inspect(ctx context.Context, taskID string) (*Status, error)
	List(ctx context.Context) ([]*Status, error)
	// Events streams status changes until ctx is done.
	Events(ctx context.Context) (<-chan *Status, error)
	// Logs writes the task's stdout and stderr, merged, as lines to w.
	Logs(ctx context.Context, taskID string, o LogOptions, w io.Writer) error
	// RemoveApp removes what the driver made for an app on this node besides
	// tasks: networks, and named volumes when volumes is true.
	RemoveApp(ctx context.Context, app string, volumes bool) error
	Execer
	Copier
}

// ExecOptions is a command to run inside a running task (berth exec).
type ExecOptions struct {
	Cmd     []string
	User    string
	WorkDir string
	Env     []string
	TTY     bool
	// Detach starts the command and returns 0 at once; no stream is used.
	Detach bool
	// Rows and Cols are the terminal's first size (TTY; 0 when unknown).
	Rows, Cols uint16
}

// ExecStreams connect an exec to its caller: Stdin ends (EOF) when the
// caller closes it, Resize brings terminal sizes (rows, cols) with TTY.
type ExecStreams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Resize         <-chan [2]uint16
}

// Execer is the part of a driver that runs commands inside its tasks.
// Exec returns the command's exit code once it ended; a command that could
// not be started is an exit code too, as docker exec gives it (126, or 127
// when it was not found), with the reason written to Stderr. An error
// means berth or the engine failed and the command's fate is unknown.
type Execer interface {
	Exec(ctx context.Context, taskID string, o ExecOptions, s ExecStreams) (int, error)
}

// Attacher is a driver that can connect to a task's own process (berth
// run's one-off), as docker attach does: Attach writes its output from the
// start (what it wrote before the call too), feeds Stdin to it when the
// task was made with stdin open, passes Resize on with a TTY, and returns
// its exit code once it exited. A driver without it is followed through
// Logs and Inspect (agent/attach.go): output only, stdout and stderr
// merged.
type Attacher interface {
	Attach(ctx context.Context, taskID string, rows, cols uint16, s ExecStreams) (int, error)
}

// ErrCopyUnsupported is returned (wrapped) by a driver whose tasks have no
// filesystem of their own to copy into or out of (exec: host processes).
var ErrCopyUnsupported = errors.New("copying files is not supported by this driver")

// ErrPathNotFound is returned (wrapped) for a path that is not in a task.
var ErrPathNotFound = errors.New("no such file or directory in the task")

// ErrCopyTooLarge is returned (wrapped) for an archive over a copy's limit.
var ErrCopyTooLarge = errors.New("archive too large")

// Copier copies files into and out of a task (berth cp), as tar streams of
// at most limit bytes (a larger one fails with ErrCopyTooLarge).
//   - CopyFrom writes a tar of path (a file or a directory, its last
//     element the archive's top entry) to w. It calls start (once, before
//     anything is written) when the path is known to be there, so the
//     caller can answer before a large archive is read.
//   - CopyTo extracts the tar r, whose entries sit under one top entry, to
//     path: into path when it is a directory, else as path itself (the
//     top entry renamed to path's last element), as docker cp does.
type Copier interface {
	CopyFrom(ctx context.Context, taskID, path string, limit int64, start func(), w io.Writer) error
	CopyTo(ctx context.Context, taskID, path string, limit int64, r io.Reader) error
}

// VolumeRemover is a Driver that keeps named volumes on the node
// (`berth volume rm` asks it to remove one).
type VolumeRemover interface {
	// RemoveVolume removes the named volume berth made for app on this
	// node; one that is not there, or that berth did not make, is left as
	// it is and is no error.
	RemoveVolume(ctx context.Context, app, name string) error
}
