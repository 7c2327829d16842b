package agent

import (
	"log/slog"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// Config configures one node agent.
type Config struct {
	// ManagerAddr is the cluster address (mutual TLS) of a manager,
	// "127.0.0.1:7702".
	ManagerAddr string
	// JoinToken is the worker token; needed on first start only (the node
	// keeps its certificate in DataDir/pki afterwards).
	JoinToken string
	// Name of the node (defaults to the hostname).
	Name string
	// DataDir holds the node's identity and local task state.
	DataDir string
	// ListenAddr is the agent's own API (task logs), "127.0.0.1:7710";
	// the manager reaches it there.
	ListenAddr string
	Labels     map[string]string
	// Drivers names the drivers to offer; empty: exec, plus docker when an
	// engine answers.
	Drivers []string
	// DriverOverrides replaces drivers by name (tests pass fakes here).
	DriverOverrides map[string]driver.Driver
	// Capacity, when set, is what the node registers instead of the
	// machine's CPUs and memory (berth sim gives each simulated node its own).
	Capacity *types.ResourceAmounts
	// VolatileState skips the fsync of each write of the node's local task
	// state (DataDir/agent.db), which then survives a crash of the agent
	// but not of the machine. For berth sim only: its tasks live in its
	// process, so a machine crash loses them anyway, and a thousand nodes'
	// fsyncs were a quarter of its CPU.
	VolatileState bool
	// Parallel bounds how many tasks start at once (default 8).
	Parallel int
	// HeartbeatEvery overrides the period the manager suggests.
	HeartbeatEvery time.Duration
	Version        string
	Logger         *slog.Logger

	// RegistryAddr is where the pull-through endpoint of the cluster
	// registry listens, on loopback ("127.0.0.1:7703"; port 0 picks one):
	// the docker driver pulls cluster images through it. Empty: off.
	RegistryAddr string
	// DNSUpstreams are the resolvers (address:port) the agent's DNS sends
	// the names that are not berth's to; empty: the node's resolv.conf.
	// Tests give their own, on loopback.
	DNSUpstreams []string

	// AdvertiseAddr is where the manager reaches the agent's API when it
	// differs from the listener's address (a wildcard ListenAddr).
	AdvertiseAddr string
	// Overlay turns on the cluster overlay on this node (berth agent
	// --overlay, on by default there): tasks' networks take this node's
	// slices, the VXLAN device reaches the other nodes' and service VIPs
	// are balanced. Off, networks are the engine's local ones, as for
	// agents that share one engine and network namespace.
	Overlay bool
	Timing  Timing
}

// Timing knobs with defaults; tests shorten them.
type Timing struct {
	// PollEvery is how often the agent lists its drivers' tasks, to catch a
	// change whose event was missed (default 3s).
	PollEvery time.Duration
	// ReportWait is how long a status change waits for others to join its
	// batch (default 50ms); ReportMaxWait caps the wait of the first change
	// of a batch (default 500ms).
	ReportWait    time.Duration
	ReportMaxWait time.Duration
	// RetryEvery is the first delay before a failed call to the manager or
	// a driver is tried again; it doubles up to 30 times this (default 500ms).
	RetryEvery time.Duration
	// TeardownGiveUp bounds how long removing an app's networks and
	// volumes is retried before the agent leaves them and reports the
	// teardown done (default 30s).
	TeardownGiveUp time.Duration
}

func (t Timing) withDefaults() Timing {
	if t.TeardownGiveUp <= 0 {
		t.TeardownGiveUp = 30 * time.Second
	}
	if t.PollEvery <= 0 {
		t.PollEvery = 3 * time.Second
	}
	if t.ReportWait <= 0 {
		t.ReportWait = 50 * time.Millisecond
	}
	if t.ReportMaxWait < t.ReportWait {
		t.ReportMaxWait = max(500*time.Millisecond, t.ReportWait)
	}
	if t.RetryEvery <= 0 {
		t.RetryEvery = 500 * time.Millisecond
	}
	return t
}
