package raftnode

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// ErrNotLeader is wrapped by the errors of calls that only the leader can
// serve. Callers forward the request to Leader() and try again.
var ErrNotLeader = errors.New("not the leader")

// Node is one server of a Raft cluster, applying committed entries to an FSM.
type Node struct {
	raft      *raft.Raft
	transport *raft.NetworkTransport
	wal       *wal.WAL
	// meta is the WAL's metadata and stable store. WAL.Close leaves it
	// open, so the node closes it, releasing its file lock for a restart.
	meta   *metadb.BoltMetaDB
	lock   *dirLock
	logger *slog.Logger
	id     raft.ServerID
}

// New opens (or creates) the node's Raft state under cfg.DataDir, starts
// its transport on cfg.BindAddr and starts Raft. On a restart Raft restores
// the latest snapshot into fsm and replays the log after it. The caller
// must call Shutdown.
func New(cfg Config, fsm raft.FSM) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{logger: cfg.Logger, id: raft.ServerID(cfg.ID)}
	if err := n.start(cfg, fsm); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (n *Node) start(cfg Config, fsm raft.FSM) error {
	hlog := newHCLogger(cfg.Logger, "raft")
	base := filepath.Join(cfg.DataDir, "raft")
	walDir := filepath.Join(base, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return fmt.Errorf("create raft directory: %w", err)
	}
	var err error
	if n.lock, err = lockDir(base); err != nil {
		return err
	}
	n.meta = &metadb.BoltMetaDB{}
	if n.wal, err = wal.Open(walDir, wal.WithMetaStore(n.meta), wal.WithLogger(hlog.Named("wal"))); err != nil {
		return fmt.Errorf("open raft log in %s: %w", walDir, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(base, snapshotsRetained, hlog.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("open raft snapshots in %s: %w", base, err)
	}
	if n.transport, err = newTransport(cfg, hlog); err != nil {
		return err
	}
	rc := cfg.raftConfig()
	if cfg.Bootstrap {
		if err := n.bootstrap(rc, snaps); err != nil {
			return err
		}
	}
	if n.raft, err = raft.NewRaft(rc, fsm, n.wal, n.wal, snaps, n.transport); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	return nil
}

// newTransport listens on cfg.BindAddr and advertises cfg.AdvertiseAddr,
// or the bound address when none is given.
func newTransport(cfg Config, hlog hclog.Logger) (*raft.NetworkTransport, error) {
	var advertise net.Addr
	if cfg.AdvertiseAddr != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("raft advertise address %q: %w", cfg.AdvertiseAddr, err)
		}
		advertise = a
	}
	t, err := raft.NewTCPTransportWithLogger(cfg.BindAddr, advertise, maxPool, transportTimeout, hlog.Named("transport"))
	if err != nil {
		return nil, fmt.Errorf("listen for raft on %s: %w", cfg.BindAddr, err)
	}
	return t, nil
}

// bootstrap makes this server the one voter of a new cluster, unless the
// data directory already holds Raft state (a restart).
func (n *Node) bootstrap(rc *raft.Config, snaps raft.SnapshotStore) error {
	exists, err := raft.HasExistingState(n.wal, n.wal, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	if exists {
		return nil
	}
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: rc.LocalID, Address: n.transport.LocalAddr(),
	}}}
	if err := raft.BootstrapCluster(rc, n.wal, n.wal, snaps, n.transport, conf); err != nil {
		return fmt.Errorf("bootstrap raft cluster: %w", err)
	}
	return nil
}

// Shutdown stops Raft, then closes the transport and the log. The FSM gets
// no more calls once it returns.
func (n *Node) Shutdown() error {
	var errs []error
	if n.raft != nil {
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("stop raft: %w", err))
		}
	}
	errs = append(errs, n.close())
	return errors.Join(errs...)
}

// close releases what start may have opened: transport, log, lock.
func (n *Node) close() error {
	var errs []error
	if n.transport != nil {
		if err := n.transport.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft transport: %w", err))
		}
	}
	if n.wal != nil {
		if err := n.wal.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log: %w", err))
		}
	}
	if n.meta != nil {
		if err := n.meta.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft metadata: %w", err))
		}
	}
	if n.lock != nil {
		errs = append(errs, n.lock.unlock())
	}
	return errors.Join(errs...)
}

// Addr is the Raft address other servers reach this one at (the bound
// address when BindAddr asked for port 0).
func (n *Node) Addr() string { return string(n.transport.LocalAddr()) }
