package raftnode

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// ForceNewCluster rewrites the Raft state in cfg.DataDir so that this
// server is the one voter of its cluster, keeping all its data: the way out
// when a majority of the managers is lost for good (as Swarm's
// --force-new-cluster). Run it while the server is stopped, then start the
// server with New: it elects itself and new servers can join it.
//
// Every entry in this server's log counts as committed afterwards, even one
// the old cluster had not committed. The other servers of the old cluster
// must not come back with their old data: they join again with empty data
// directories.
//
// cfg gives the server's ID, DataDir and address (AdvertiseAddr, else
// BindAddr, with a real port: it is written into the new configuration and
// New must listen there). scratch is an empty FSM the recovery replays the
// state through and then discards; it must not be the FSM later given to
// New.
func ForceNewCluster(cfg Config, scratch raft.FSM) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	addr := cfg.AdvertiseAddr
	if addr == "" {
		addr = cfg.BindAddr
	}
	if err := checkDialable(addr); err != nil {
		return err
	}
	// Look before opening: opening creates the directories.
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "raft")); err != nil {
		return fmt.Errorf("no raft state in %s to recover; is this the data directory of a manager? %w", cfg.DataDir, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rc := cfg.raftConfig()
	s, err := openStores(cfg.DataDir, rc.Logger)
	if err != nil {
		return err
	}
	defer s.close()
	ok, err := s.hasState()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no raft state in %s to recover; is this the data directory of a manager?", cfg.DataDir)
	}
	// No network is needed: the transport only names the server in the
	// snapshot's metadata.
	_, trans := raft.NewInmemTransport(raft.ServerAddress(addr))
	defer trans.Close()
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(addr),
	}}}
	if err := raft.RecoverCluster(rc, scratch, s.logs, s.logs, s.snaps, trans, conf); err != nil {
		return fmt.Errorf("force a new cluster from %s: %w", cfg.DataDir, err)
	}
	cfg.Logger.Info("raft state rewritten: this server is the only voter of a new cluster", "id", cfg.ID, "address", addr)
	return nil
}

// checkDialable refuses an address other servers could not dial.
func checkDialable(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("raft address %q: %w", addr, err)
	}
	if port == "0" || host == "" || net.ParseIP(host).IsUnspecified() {
		return fmt.Errorf("raft address %q cannot be dialled by other servers; give the address this server will listen on", addr)
	}
	return nil
}
