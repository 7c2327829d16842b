package raftnode

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// ErrNotLeader is wrapped by the errors of calls that only the leader can
// serve. Callers forward the request to Leader() and try again.
var ErrNotLeader = errors.New("not the leader")

// Node is one server of a Raft cluster, applying committed entries to an FSM.
type Node struct {
	raft      *raft.Raft
	transport *raft.NetworkTransport
	stores    *stores
	fsm       raft.FSM
	dataDir   string
	logger    *slog.Logger
	id        raft.ServerID
	// haltErr is set when the FSM halts (see halt.go). stopWatch ends the
	// goroutine that waits for it, watchDone says it has ended.
	haltErr   atomic.Pointer[error]
	stopWatch chan struct{}
	watchDone chan struct{}
	stopOnce  sync.Once
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
	n := &Node{fsm: fsm, dataDir: cfg.DataDir, logger: cfg.Logger, id: raft.ServerID(cfg.ID),
		stopWatch: make(chan struct{}), watchDone: make(chan struct{})}
	if err := n.start(cfg); err != nil {
		_ = n.close()
		return nil, err
	}
	if h, ok := fsm.(Halter); ok {
		go n.watchHalt(h)
	} else {
		close(n.watchDone)
	}
	return n, nil
}

func (n *Node) start(cfg Config) error {
	hlog := newHCLogger(cfg.Logger, "raft")
	var err error
	if n.stores, err = openStores(cfg.DataDir, hlog); err != nil {
		return err
	}
	if n.transport, err = newTransport(cfg, hlog); err != nil {
		return err
	}
	rc := cfg.raftConfig()
	if cfg.Bootstrap {
		if err := n.bootstrap(rc); err != nil {
			return err
		}
	}
	s := n.stores
	if n.raft, err = raft.NewRaft(rc, n.fsm, s.logs, s.logs, s.snaps, n.transport); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	s.health.watch(n.raft)
	return nil
}

// bootstrap makes this server the one voter of a new cluster, unless the
// data directory already holds Raft state (a restart).
func (n *Node) bootstrap(rc *raft.Config) error {
	exists, err := n.stores.hasState()
	if err != nil || exists {
		return err
	}
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: rc.LocalID, Address: n.transport.LocalAddr(),
	}}}
	s := n.stores
	if err := raft.BootstrapCluster(rc, s.logs, s.logs, s.snaps, n.transport, conf); err != nil {
		return fmt.Errorf("bootstrap raft cluster: %w", err)
	}
	return nil
}

// Shutdown stops Raft, then closes the transport and the log. The FSM gets
// no more calls once it returns.
func (n *Node) Shutdown() error {
	n.stopOnce.Do(func() { close(n.stopWatch) })
	<-n.watchDone
	var errs []error
	if n.raft != nil {
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("stop raft: %w", err))
		}
	}
	errs = append(errs, n.close())
	return errors.Join(errs...)
}

// close releases what start may have opened: transport, stores, lock.
func (n *Node) close() error {
	var errs []error
	if n.transport != nil {
		if err := n.transport.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft transport: %w", err))
		}
	}
	if n.stores != nil {
		errs = append(errs, n.stores.close())
	}
	return errors.Join(errs...)
}

// Addr is the Raft address other servers reach this one at (the bound
// address when BindAddr asked for port 0).
func (n *Node) Addr() string { return string(n.transport.LocalAddr()) }
