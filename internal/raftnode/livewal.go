package raftnode

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/types"
)

// liveWAL is raft-wal as raft's log and stable store, recording the result
// of every write in the disk health, and reopened in place when it cannot
// go on. raft-wal starts each 64 MiB segment whole; when the disk has no
// room for the next one, it seals the tail and refuses every append after
// (types.ErrSealed) until it is opened again, which recreates the missing
// segment. Reopening it under raft's feet, once the disk has room, spares
// the manager a restart. Raft keeps its own view of the log's indexes,
// which a reopen does not change: appends that failed were not written.
type liveWAL struct {
	h    *diskHealth
	open func() (*wal.WAL, error)

	// mu guards w: every call holds it shared, a reopen exclusively.
	mu sync.RWMutex
	w  *wal.WAL
}

// current is the WAL in use now (to close it).
func (l *liveWAL) current() *wal.WAL {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.w
}

// stuck reports whether the WAL refuses appends until it is reopened.
func stuck(err error) bool { return errors.Is(err, types.ErrSealed) }

// reopen closes the WAL and opens it again. Should the open fail, the
// closed WAL stays: every call fails (raft-wal's ErrClosed) until a later
// reopen succeeds.
func (l *liveWAL) reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.w.Close()
	w, err := l.open()
	if err != nil {
		return fmt.Errorf("reopen the raft log: %w", err)
	}
	l.w = w
	return nil
}

func (l *liveWAL) FirstIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.w.FirstIndex()
}

func (l *liveWAL) LastIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.w.LastIndex()
}

func (l *liveWAL) GetLog(index uint64, log *raft.Log) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.w.GetLog(index, log)
}

func (l *liveWAL) StoreLog(log *raft.Log) error {
	return l.StoreLogs([]*raft.Log{log})
}

func (l *liveWAL) StoreLogs(logs []*raft.Log) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.h.recordStore(l.w.StoreLogs(logs))
}

func (l *liveWAL) DeleteRange(lo, hi uint64) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.h.recordStore(l.w.DeleteRange(lo, hi))
}

func (l *liveWAL) Set(k, v []byte) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.h.recordStore(l.w.Set(k, v))
}

func (l *liveWAL) Get(k []byte) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.w.Get(k)
}

func (l *liveWAL) SetUint64(k []byte, v uint64) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.h.recordStore(l.w.SetUint64(k, v))
}

func (l *liveWAL) GetUint64(k []byte) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.w.GetUint64(k)
}

// IsMonotonic tells raft, as raft-wal does, that the log only takes
// appends at its end and deletions of a prefix or suffix.
func (l *liveWAL) IsMonotonic() bool { return true }

var (
	_ raft.LogStore          = (*liveWAL)(nil)
	_ raft.StableStore       = (*liveWAL)(nil)
	_ raft.MonotonicLogStore = (*liveWAL)(nil)
)
