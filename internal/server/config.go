package server

import (
	"log/slog"
	"time"
)

// Config configures one manager.
type Config struct {
	// Name of this manager (defaults to the hostname).
	Name string
	// DataDir holds the Raft log, snapshots and the manager's identity.
	DataDir string
	// HTTPAddr is where the API listens ("127.0.0.1:7700").
	HTTPAddr string
	// RaftAddr is where Raft listens ("127.0.0.1:7701"); empty: HTTP port + 1.
	RaftAddr string
	// Dev marks `berth server --dev`; it changes nothing in the code paths.
	Dev bool
	// HeartbeatTTL is how long a node may stay silent before it is down.
	HeartbeatTTL time.Duration
	// Version is the berth version reported by /v1/status.
	Version string
	Logger  *slog.Logger
}
