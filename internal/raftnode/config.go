package raftnode

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
)

// Config configures one Raft node.
type Config struct {
	// ID is this server's stable Raft ID (the manager's node ID).
	ID string
	// DataDir holds the node's data; Raft's files go under DataDir/raft.
	DataDir string
	// BindAddr is the TCP address ("host:port") Raft listens on. It is also
	// the address other servers dial unless AdvertiseAddr is set, so it must
	// not be a wildcard address then.
	BindAddr string
	// AdvertiseAddr, if set, is the address other servers dial.
	AdvertiseAddr string
	// Bootstrap starts a new cluster with this server as its one voter when
	// DataDir holds no Raft state yet. It is ignored otherwise.
	Bootstrap bool
	// TLS, when set, makes all Raft traffic mutual TLS. The one config
	// serves both ends: Certificates (or GetCertificate and
	// GetClientCertificate) is this server's certificate, ClientCAs with
	// ClientAuth RequireAndVerifyClientCert admits only peers of the
	// cluster's CA, and RootCAs verifies the peers this server dials. The
	// name verified when dialling is ServerName if set, else the host of
	// the peer's Raft address. Nil: plain TCP, for the loopback dev cluster.
	TLS    *tls.Config
	Logger *slog.Logger
	// SnapshotThreshold and SnapshotInterval: how many new log entries, and
	// how often checked, before Raft snapshots the FSM. Zero: Raft's default.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
}

// Timeouts tuned for managers on a LAN or loopback: a lone server elects
// itself within 0.6-1.2s of starting (a follower waits one to two heartbeat
// timeouts before it stands), where raft's defaults take 1-2s.
const (
	heartbeatTimeout   = 1000 * time.Millisecond
	electionTimeout    = 1000 * time.Millisecond
	leaderLeaseTimeout = 500 * time.Millisecond
	commitTimeout      = 20 * time.Millisecond

	// snapshotsRetained is how many FSM snapshots stay on disk.
	snapshotsRetained = 2
	// Transport: connections kept per peer, and the I/O deadline.
	maxPool          = 3
	transportTimeout = 10 * time.Second
)

func (c *Config) validate() error {
	switch {
	case c.ID == "":
		return errors.New("raft: a server ID is required")
	case c.DataDir == "":
		return errors.New("raft: a data directory is required")
	case c.BindAddr == "":
		return errors.New("raft: a bind address is required")
	case c.TLS != nil:
		return checkTLS(c.TLS)
	}
	return nil
}

func (c *Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.ID)
	rc.HeartbeatTimeout = heartbeatTimeout
	rc.ElectionTimeout = electionTimeout
	rc.LeaderLeaseTimeout = leaderLeaseTimeout
	rc.CommitTimeout = commitTimeout
	if c.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = c.SnapshotThreshold
	}
	if c.SnapshotInterval > 0 {
		rc.SnapshotInterval = c.SnapshotInterval
	}
	rc.Logger = newHCLogger(c.Logger, "raft")
	return rc
}
