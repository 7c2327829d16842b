package raftnode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// stores is a server's Raft state on disk under DataDir/raft: the log and
// stable store (raft-wal) and the snapshots, behind a directory lock.
type stores struct {
	lock *dirLock
	// meta is the WAL's metadata and stable store. WAL.Close leaves it
	// open, so close closes it, releasing its file lock for a restart.
	meta *metadb.BoltMetaDB
	// logs is raft-wal as raft's log and stable store, its writes recorded
	// in health, reopened when it is stuck (liveWAL). It alone holds the
	// WAL, since a reopen replaces it.
	logs   *liveWAL
	snaps  *raft.FileSnapshotStore
	health *diskHealth
}

// openStores opens (or creates) the Raft state under dataDir. On error
// nothing stays open.
func openStores(dataDir string, hlog hclog.Logger) (*stores, error) {
	base := filepath.Join(dataDir, "raft")
	walDir := filepath.Join(base, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft directory: %w", err)
	}
	s := &stores{health: newDiskHealth(base, hlog.Named("disk"))}
	if err := s.open(base, walDir, hlog); err != nil {
		_ = s.close()
		return nil, err
	}
	s.health.reopen = s.logs.reopen
	return s, nil
}

// openWAL opens the log with the metadata store s keeps open.
func (s *stores) openWAL(walDir string, hlog hclog.Logger) (*wal.WAL, error) {
	w, err := wal.Open(walDir, wal.WithMetaStore(s.meta), wal.WithSegmentSize(segmentSize), wal.WithLogger(hlog.Named("wal")))
	if err != nil {
		return nil, fmt.Errorf("open raft log in %s: %w", walDir, err)
	}
	return w, nil
}

func (s *stores) open(base, walDir string, hlog hclog.Logger) error {
	var err error
	if s.lock, err = lockDir(base); err != nil {
		return err
	}
	s.meta = &metadb.BoltMetaDB{}
	w, err := s.openWAL(walDir, hlog)
	if err != nil {
		return err
	}
	s.logs = &liveWAL{h: s.health, w: w, open: func() (*wal.WAL, error) { return s.openWAL(walDir, hlog) }}
	if s.snaps, err = raft.NewFileSnapshotStoreWithLogger(base, snapshotsRetained, hlog.Named("snapshots")); err != nil {
		return fmt.Errorf("open raft snapshots in %s: %w", base, err)
	}
	return nil
}

// hasState reports whether the server ever held Raft state (a term, a log
// entry or a snapshot).
func (s *stores) hasState() (bool, error) {
	ok, err := raft.HasExistingState(s.logs, s.logs, s.snaps)
	if err != nil {
		return false, fmt.Errorf("read raft state: %w", err)
	}
	return ok, nil
}

// close stops the disk probe, then releases the log, its metadata and the
// lock, in that order.
func (s *stores) close() error {
	s.health.stopWatch()
	var errs []error
	if s.logs != nil {
		if err := s.logs.current().Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log: %w", err))
		}
	}
	if s.meta != nil {
		if err := s.meta.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft metadata: %w", err))
		}
	}
	if s.lock != nil {
		errs = append(errs, s.lock.unlock())
	}
	return errors.Join(errs...)
}
