package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// SnapshotVerifier is implemented by an FSM that can check a snapshot
// without applying it. RestoreSnapshot calls it before handing a user's
// snapshot to raft: once raft has stored a restored snapshot, an FSM that
// fails to read it makes raft panic.
type SnapshotVerifier interface {
	VerifySnapshot(r io.Reader) error
}

// SaveSnapshot takes a snapshot of this server's FSM now (or reuses the
// latest one when nothing was applied since) and writes it to w as a berth
// snapshot file. Any server can save; a follower's state may lag the
// leader's by a few entries. The context bounds the wait for the snapshot,
// not the copy to w.
func (n *Node) SaveSnapshot(ctx context.Context, w io.Writer) (SnapshotMeta, error) {
	meta, state, err := n.freshSnapshot(ctx)
	if err != nil {
		return SnapshotMeta{}, fmt.Errorf("take raft snapshot: %w", err)
	}
	defer state.Close()
	m := SnapshotMeta{Index: meta.Index, Term: meta.Term, Size: meta.Size}
	if err := writeSnapshotFile(w, m, state); err != nil {
		return SnapshotMeta{}, fmt.Errorf("write snapshot: %w", err)
	}
	return m, nil
}

func (n *Node) freshSnapshot(ctx context.Context) (*raft.SnapshotMeta, io.ReadCloser, error) {
	f := n.raft.Snapshot()
	err := wait(ctx, f)
	if err == nil {
		return f.Open()
	}
	if !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil, nil, err
	}
	metas, err := n.stores.snaps.List()
	if err != nil {
		return nil, nil, err
	}
	if len(metas) == 0 {
		return nil, nil, errors.New("this server holds no state yet")
	}
	return n.stores.snaps.Open(metas[0].ID)
}

// RestoreSnapshot replaces the cluster's state with a snapshot file written
// by SaveSnapshot. Leader only: the leader restores it into its FSM and
// sends it to every follower. The file is verified whole (header, length,
// checksum, and the FSM's own check when it is a SnapshotVerifier) before
// anything changes. Entries applied after the snapshot was saved are lost;
// in-flight applies fail. ctx's deadline bounds the restore; cancelling ctx
// without a deadline stops only the reading of r.
func (n *Node) RestoreSnapshot(ctx context.Context, r io.Reader) error {
	if !n.IsLeader() {
		return fmt.Errorf("restore snapshot: %w", ErrNotLeader)
	}
	spool, meta, err := n.spoolSnapshot(ctx, r)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	if err := n.verifyState(spool); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	rm := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: meta.Index, Term: meta.Term, Size: meta.Size}
	if err := n.raft.Restore(rm, spool, enqueueTimeout(ctx)); err != nil {
		return fmt.Errorf("restore snapshot: %w", leadershipError(err))
	}
	return nil
}

// spoolSnapshot copies the state in r to a temporary file beside the Raft
// data, verified and rewound, so that nothing reaches raft unchecked.
func (n *Node) spoolSnapshot(ctx context.Context, r io.Reader) (*os.File, SnapshotMeta, error) {
	f, err := os.CreateTemp(filepath.Join(n.dataDir, "raft"), "restore-*.tmp")
	if err != nil {
		return nil, SnapshotMeta{}, fmt.Errorf("create a temporary file for the snapshot: %w", err)
	}
	meta, err := readSnapshotFile(ctxReader{ctx, r}, f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, meta, err
	}
	return f, meta, nil
}

// verifyState lets the FSM check the spooled state, then rewinds it.
func (n *Node) verifyState(f *os.File) error {
	v, ok := n.fsm.(SnapshotVerifier)
	if !ok {
		return nil
	}
	if err := v.VerifySnapshot(f); err != nil {
		return fmt.Errorf("the snapshot's state cannot be read: %w", err)
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// LastSnapshotSize is the size in bytes of the newest snapshot on this
// server's disk, or 0 when it has none: the metric of how big the state
// that a new server must receive has grown.
func (n *Node) LastSnapshotSize() int64 {
	metas, err := n.stores.snaps.List()
	if err != nil || len(metas) == 0 {
		return 0
	}
	return metas[0].Size
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
