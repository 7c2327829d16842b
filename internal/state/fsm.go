package state

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/hashicorp/raft"
)

// FSM applies committed Raft log entries to a Store. It implements
// raft.FSM; raft calls Apply, Snapshot and Restore from one goroutine.
type FSM struct {
	store  *Store
	logger *slog.Logger
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns an FSM writing to s.
func NewFSM(s *Store, logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FSM{store: s, logger: logger}
}

// Apply decodes and applies one command. It returns the command's result,
// or an error value when the command was rejected (the store is then
// unchanged). Every write it makes carries l.Index as its Raft index.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	cmd, err := decode(l.Data)
	if err != nil {
		// Every manager fails the same way on the same entry, so the stores
		// stay equal; the operator learns of it here.
		f.logger.Error("skip undecodable raft log entry", "index", l.Index, "err", err)
		return err
	}
	res, err := f.store.write(l.Index, cmd.apply)
	if err != nil {
		f.logger.Debug("command rejected", "index", l.Index, "command", fmt.Sprintf("%T", cmd), "err", err)
		return err
	}
	return res
}

// Snapshot captures the store as it is now. The capture is a memdb read
// transaction, so it is cheap and Apply may go on while it is persisted.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
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
