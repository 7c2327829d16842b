package server

import (
	"log/slog"
	"net/netip"
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
	// ClusterAddr is the mutual-TLS port for agents and other managers
	// ("127.0.0.1:7702"); empty: API port + 2.
	ClusterAddr string
	// Join is the cluster address of a manager to join; empty: this
	// manager bootstraps a new cluster (when it has no state yet).
	Join string
	// JoinToken is the manager token given with Join.
	JoinToken string
	// ForceNewCluster turns this manager's data into a one-manager cluster
	// (after a permanent loss of quorum); apps and nodes are kept.
	ForceNewCluster bool
	// SecureAPI serves the user API with TLS and credentials even on a
	// loopback address (beyond loopback it always does).
	SecureAPI bool
	// Dev marks `berth server --dev`; it changes nothing in the code paths.
	Dev bool
	// CertTTL is how long the node certificates this manager signs are
	// valid (default pki.DefaultCertTTL); nodes renew theirs once a third
	// of it is left. Tests shorten it to watch renewal.
	CertTTL time.Duration
	// HeartbeatTTL is how long a node may stay silent before it is down.
	HeartbeatTTL time.Duration
	// Limits bound the tasks and services a submit may ask for; zero
	// fields take the defaults (DefaultLimits).
	Limits Limits
	// RegistryMaxBytes bounds the cluster registry's directory
	// (--registry-max-size); 0 takes registry.DefaultMaxBytes.
	RegistryMaxBytes int64
	// AddressPool is a new cluster's overlay address pool
	// (--address-pool); the zero prefix takes ipam.DefaultPool. It is
	// fixed at bootstrap: a joining manager's is ignored.
	AddressPool netip.Prefix
	// AddressSlice is a new cluster's node slice size, a prefix length
	// (--address-slice); 0 takes ipam's default. Fixed at bootstrap too.
	AddressSlice int
	// RegistryGCGrace is how long an image no service version needs, and a
	// blob no image references, are kept before GC removes them; it also
	// paces GC. 0 takes DefaultRegistryGCGrace. Tests shorten it
	// (--registry-gc-grace, hidden).
	RegistryGCGrace time.Duration
	// Version is the berth version reported by /v1/status.
	Version string
	Logger  *slog.Logger
}
