package state

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// ErrCorrupt is wrapped by the error of a log entry that does not decode:
// its bytes are not those the leader encoded (the checksum fails), or it is
// no command this manager knows.
var ErrCorrupt = errors.New("corrupt or undecodable")

// HaltError is why an FSM halted: the first committed entry it could not
// decode, and why.
type HaltError struct {
	Index uint64
	Err   error // wraps ErrCorrupt
}

func (e *HaltError) Error() string {
	return fmt.Sprintf("Raft log entry %d is %v", e.Index, e.Err)
}

func (e *HaltError) Unwrap() error { return e.Err }

// FSM applies committed Raft log entries to a Store. It implements
// raft.FSM; raft calls Apply, Snapshot and Restore from one goroutine.
//
// An entry that does not decode halts the FSM for good: it applies neither
// that entry nor any later one, and refuses to snapshot. Skipping it would
// make this manager's state silently differ from its peers' (their copies of
// the entry are likely intact), and every later entry would apply to the
// wrong state. The owner watches Halted and takes the manager out of the
// cluster; its data must be wiped and the manager joined again.
type FSM struct {
	store  *Store
	logger *slog.Logger
	// halt is set once, by Apply, and read by any goroutine.
	halt   atomic.Pointer[HaltError]
	halted chan struct{} // closed when halt is set
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns an FSM writing to s.
func NewFSM(s *Store, logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FSM{store: s, logger: logger, halted: make(chan struct{})}
}

// Apply decodes and applies one command. It returns the command's result,
// or an error value when the command was rejected (the store is then
// unchanged) or the FSM has halted (a *HaltError). Every write it makes
// carries l.Index as its Raft index.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if h := f.halt.Load(); h != nil {
		return h
	}
	cmd, err := decode(l.Data)
	if err != nil {
		return f.stop(l.Index, err)
	}
	res, err := f.store.write(l.Index, cmd.apply)
	if err != nil {
		f.logger.Debug("command rejected", "index", l.Index, "command", fmt.Sprintf("%T", cmd), "err", err)
		return err
	}
	return res
}

// stop halts the FSM at index. Only Apply calls it, once.
func (f *FSM) stop(index uint64, err error) *HaltError {
	h := &HaltError{Index: index, Err: err}
	f.halt.Store(h)
	close(f.halted)
	f.logger.Error("halting: a committed raft log entry cannot be applied; nothing after it will be", "index", index, "err", err)
	return h
}

// Halted is closed once the FSM has met a committed entry it cannot decode.
func (f *FSM) Halted() <-chan struct{} { return f.halted }

// HaltErr is the *HaltError the FSM halted with, or nil while it runs.
func (f *FSM) HaltErr() error {
	if h := f.halt.Load(); h != nil {
		return h
	}
	return nil
}

// Snapshot captures the store as it is now. The capture is a memdb read
// transaction, so it is cheap and Apply may go on while it is persisted. A
// halted FSM refuses: raft would label its state with an index past the
// entry it could not apply.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.HaltErr(); err != nil {
		return nil, fmt.Errorf("snapshot the state: %w", err)
	}
	db, _ := f.store.current()
	return &snapshot{txn: db.Txn(false)}, nil
}

// Restore replaces the store's contents with a snapshot written by Persist.
// The swap is atomic: readers see either the old contents or the new, and
// every WaitForChange waiter wakes to look again.
func (f *FSM) Restore(r io.ReadCloser) error {
	defer r.Close()
	db, err := readSnapshot(r)
	if err != nil {
		return fmt.Errorf("restore state snapshot: %w", err)
	}
	f.store.replace(db)
	return nil
}

// VerifySnapshot reads a snapshot fully without applying it, so a user's
// restore of a damaged or foreign file is refused before Raft installs it.
func (f *FSM) VerifySnapshot(r io.Reader) error {
	_, err := readSnapshot(r)
	return err
}
