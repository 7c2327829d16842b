package raftnode

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/internal/state"
)

// waitDump waits until the objects of s's store render as want (see contents).
func waitDump(t *testing.T, ctx context.Context, s *server, want string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for contents(t, s.store) != want {
		select {
		case <-ctx.Done():
			t.Fatalf("%s never reached the state\n got %s\nwant %s", s.node.id, contents(t, s.store), want)
		case <-tick.C:
		}
	}
}

func TestSaveAndRestoreSnapshot(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	servers := startCluster(t, ctx, 2, nil)
	leader, follower := servers[0], servers[1]
	if n := leader.node.LastSnapshotSize(); n != 0 {
		t.Errorf("LastSnapshotSize before any snapshot = %d, want 0", n)
	}
	apply(t, ctx, leader.node, upsertApp("a"))
	apply(t, ctx, leader.node, upsertApp("b"))
	saved := contents(t, leader.store)
	savedIndex := leader.store.View().Index()

	var file bytes.Buffer
	meta, err := leader.node.SaveSnapshot(ctx, &file)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Index < leader.store.View().Index() || meta.Size == 0 {
		t.Errorf("snapshot meta %+v does not cover the store at index %d", meta, leader.store.View().Index())
	}
	if n := leader.node.LastSnapshotSize(); n != meta.Size {
		t.Errorf("LastSnapshotSize = %d, want the saved snapshot's %d", n, meta.Size)
	}
	// Nothing applied since: the same snapshot again, byte for byte.
	var again bytes.Buffer
	if _, err := leader.node.SaveSnapshot(ctx, &again); err != nil || !bytes.Equal(again.Bytes(), file.Bytes()) {
		t.Errorf("a second save with nothing new: err %v, same bytes %v", err, bytes.Equal(again.Bytes(), file.Bytes()))
	}

	apply(t, ctx, leader.node, upsertApp("c"))
	apply(t, ctx, leader.node, state.DeleteApp{Name: "a"})
	if err := follower.node.RestoreSnapshot(ctx, bytes.NewReader(file.Bytes())); !errors.Is(err, ErrNotLeader) {
		t.Errorf("restore on a follower: err %v, want ErrNotLeader", err)
	}
	if err := leader.node.RestoreSnapshot(ctx, bytes.NewReader(file.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := contents(t, leader.store); got != saved {
		t.Errorf("the leader's state after restore:\n got %s\nwant %s", got, saved)
	}
	if idx := leader.store.View().Index(); idx <= savedIndex {
		t.Errorf("index after restore %d, want past %d (indexes never go back)", idx, savedIndex)
	}
	waitDump(t, ctx, follower, saved)

	// The cluster goes on from the restored state.
	res := apply(t, ctx, leader.node, upsertApp("d"))
	waitApplied(t, ctx, follower, res.(*state.UpsertResult).App.ModifyIndex)
	if v := follower.store.View(); v.App("a") == nil || v.App("c") != nil || v.App("d") == nil {
		t.Error("after restore and one more app the follower should hold a, b and d only")
	}
}

// verifyingFSM checks snapshots with verify before they are restored.
type verifyingFSM struct {
	raft.FSM
	verify func(io.Reader) error
}

func (f *verifyingFSM) VerifySnapshot(r io.Reader) error { return f.verify(r) }

func TestRestoreRefusesBadFiles(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	st, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	var verifyErr error
	var verified []byte
	fsm := &verifyingFSM{FSM: state.NewFSM(st, nil), verify: func(r io.Reader) error {
		verified, _ = io.ReadAll(r)
		return verifyErr
	}}
	dir := t.TempDir()
	n, err := New(Config{ID: "m1", DataDir: dir, BindAddr: "127.0.0.1:0", Bootstrap: true, Logger: testLogger(t)}, fsm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	apply(t, ctx, n, upsertApp("a"))
	var buf bytes.Buffer
	meta, err := n.SaveSnapshot(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	apply(t, ctx, n, upsertApp("b"))
	current := dump(t, st)

	header := bytes.Index(good, []byte("}\n")) + 2 // end of the JSON line
	for _, tc := range []struct {
		name      string
		file      []byte
		verifyErr error
		want      string
	}{
		{"empty", nil, nil, "not a berth snapshot"},
		{"another file", []byte("hello\nworld\n"), nil, "not a berth snapshot"},
		{"cut inside the state", good[:header+10], nil, "cut short"},
		{"no checksum", good[:header+int(meta.Size)], nil, "no checksum"},
		{"a byte changed", flip(good, header+5), nil, "damaged"},
		{"bad header", []byte(snapshotMagic + "\n{\"size\":\n"), nil, "header"},
		{"refused by the FSM", good, errors.New("unknown record"), "unknown record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifyErr = tc.verifyErr
			err := n.RestoreSnapshot(ctx, bytes.NewReader(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("restore: err %v, want one mentioning %q", err, tc.want)
			}
			if got := dump(t, st); got != current {
				t.Errorf("a refused restore changed the state:\n got %s\nwant %s", got, current)
			}
		})
	}
	if int64(len(verified)) != meta.Size {
		t.Errorf("the FSM verified %d bytes, want the snapshot's %d", len(verified), meta.Size)
	}
	verifyErr = nil
	if err := n.RestoreSnapshot(ctx, bytes.NewReader(good)); err != nil {
		t.Fatalf("the good file after the bad ones: %v", err)
	}
	if v := st.View(); v.App("a") == nil || v.App("b") != nil {
		t.Error("the good file did not bring back the saved state")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "raft", "restore-*")); len(left) > 0 {
		t.Errorf("restores left temporary files: %v", left)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}
