package agent

import (
	"log/slog"
	"time"

	"github.com/berth-dev/berth/internal/driver"
)

// Config configures one node agent.
type Config struct {
	// ManagerAddr is the API of a manager ("http://127.0.0.1:7700").
	ManagerAddr string
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
	// Parallel bounds how many tasks start at once (default 8).
	Parallel int
	// HeartbeatEvery overrides the period the manager suggests.
	HeartbeatEvery time.Duration
	Version        string
	Logger         *slog.Logger
}
