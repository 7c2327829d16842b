package machine

import (
	"context"
	"errors"
	"io"
	"time"
)

// Role is what berth runs on a host.
type Role string

const (
	RoleAgent   Role = "agent"
	RoleManager Role = "manager"
)

// State is what a driver finds of a host.
type State string

const (
	StateRunning State = "running" // berth on it runs (its supervisor restarts it if it dies)
	StateStopped State = "stopped" // made, but nothing runs (after Stop)
	StateMissing State = "missing" // its parts are gone (removed outside berth, machine rebooted)
)

// Join says how berth on a new host joins its cluster. Empty Addr: the host
// is the cluster's first manager and bootstraps it.
type Join struct {
	Addr  string // a manager's cluster address, "host:port"
	Token string // a worker token for an agent, a manager token for a manager
}

// Spec is a host to make.
type Spec struct {
	Name    string
	Cluster string // the cluster the host belongs to; the local driver keeps one subnet per cluster
	Role    Role
	Labels  map[string]string
	Join    Join
	// Images are copied from the machine's Docker engine into an agent
	// host's engine (until images travel through the cluster).
	Images []string
	// Options are the driver's own flags (ssh: address, user, key...).
	Options map[string]string
	// RegistryGCGrace, when set, is a manager's --registry-gc-grace
	// (hidden; tests shorten it to watch image GC).
	RegistryGCGrace time.Duration
}

// Host is a made host. Everything but Local is what the cluster records.
type Host struct {
	Name    string            `json:"name"`
	Driver  string            `json:"driver"`
	Cluster string            `json:"cluster"`
	Role    Role              `json:"role"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Address is the host's IP, where its berth listens: the API on
	// APIPort, the cluster port on ClusterPort, Raft on RaftPort.
	Address string `json:"address"`
	// DockerHost is the host's engine (agents), as DOCKER_HOST takes it.
	DockerHost string    `json:"docker_host,omitempty"`
	Created    time.Time `json:"created"`
	// AdminToken is set by Create on the cluster's first manager only: the
	// bootstrap's admin token, for the caller's context. Never stored.
	AdminToken string `json:"-"`
	// CACert is set by Create on the first manager too: the cluster CA's
	// certificate (PEM), for the caller's context.
	CACert []byte `json:"-"`
	// Local is the driver's record of what it made, kept on this machine
	// (never in Raft): enough for Remove with no cluster left.
	Local map[string]string `json:"local,omitempty"`
}

// The ports berth listens on inside a host.
const (
	APIPort     = 7700
	RaftPort    = 7701
	ClusterPort = 7702
)

// Progress is told each step as it starts ("create namespace", "start
// engine", "join cluster"...). It may be nil.
type Progress func(host, step string)

// Stdio is where Exec's command reads and writes.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// Driver makes and tears down hosts. Implementations must be safe for
// concurrent use on different hosts (a cluster's hosts are made in
// parallel).
type Driver interface {
	// Name is the driver's name, as --driver takes it.
	Name() string
	// Check validates spec (names, labels, options) without making
	// anything.
	Check(spec Spec) error
	// Create makes the host; on failure it leaves nothing behind.
	Create(ctx context.Context, spec Spec, progress Progress) (*Host, error)
	// Start runs berth on a stopped host again; Stop stops it (and the
	// host's engine) without removing anything.
	Start(ctx context.Context, h *Host) error
	Stop(ctx context.Context, h *Host) error
	// Remove tears the host down; force goes on past parts that fail.
	Remove(ctx context.Context, h *Host, force bool) error
	// Status tells whether the host and berth on it run.
	Status(ctx context.Context, h *Host) (State, error)
	// Exec runs cmd inside the host (local: in its namespace, with its
	// engine as DOCKER_HOST; ssh: over SSH) and returns its exit code.
	Exec(ctx context.Context, h *Host, cmd []string, stdio Stdio) (int, error)
}

// ErrExists is wrapped by Check and Create when the name is taken.
var ErrExists = errors.New("a host of that name exists")

// ErrNotFound is wrapped when a host is not known.
var ErrNotFound = errors.New("no such host")
