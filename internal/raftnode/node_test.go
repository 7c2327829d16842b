package raftnode

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

var t0 = time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)

// testLogger shows raft's logs in `go test -v` output only.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// countingFSM counts Restore calls of the FSM it wraps.
type countingFSM struct {
	raft.FSM
	restores atomic.Int32
}

func (f *countingFSM) Restore(r io.ReadCloser) error {
	f.restores.Add(1)
	return f.FSM.Restore(r)
}

type server struct {
	node  *Node
	store *state.Store
	fsm   *countingFSM
}

// startServer starts a node with a fresh store on dir; it is shut down when
// the test ends unless the test did it first.
func startServer(t *testing.T, cfg Config) *server {
	t.Helper()
	st, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	fsm := &countingFSM{FSM: state.NewFSM(st, nil)}
	if cfg.BindAddr == "" {
		cfg.BindAddr = "127.0.0.1:0"
	}
	cfg.Logger = testLogger(t)
	n, err := New(cfg, fsm)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { _ = n.Shutdown() }) }
	t.Cleanup(stop)
	return &server{node: n, store: st, fsm: fsm}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func apply(t *testing.T, ctx context.Context, n *Node, cmd state.Command) any {
	t.Helper()
	b, err := state.Encode(cmd)
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Apply(ctx, b)
	if err != nil {
		t.Fatalf("apply %T: %v", cmd, err)
	}
	return res
}

// dump renders everything a store holds, to compare two stores.
func dump(t *testing.T, s *state.Store) string {
	t.Helper()
	v := s.View()
	b, err := json.Marshal([]any{v.Apps(), v.Tasks(state.TaskFilter{}), v.Nodes(), v.Index()})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// contents renders a store's objects without its index: after a restore
// the objects are the snapshot's, while the index moves on (it never goes
// back, so blocking queries wake).
func contents(t *testing.T, s *state.Store) string {
	t.Helper()
	v := s.View()
	b, err := json.Marshal([]any{v.Apps(), v.Tasks(state.TaskFilter{}), v.Nodes()})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testApp() *types.App {
	return &types.App{Name: "web", Services: []*types.Service{
		{Name: "api", Image: "api:1", Mode: types.ModeReplicated, Replicas: 2},
	}}
}

func TestSingleNodeApplyAndRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxFor(t, 30*time.Second)
	s1 := startServer(t, Config{ID: "m1", DataDir: dir, Bootstrap: true})
	start := time.Now()
	if err := s1.node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("leader after %v", time.Since(start))
	if !s1.node.IsLeader() {
		t.Fatal("the only voter is not the leader")
	}
	if addr, id := s1.node.Leader(); id != "m1" || addr != s1.node.Addr() {
		t.Errorf("Leader() = %q, %q; want %q, m1", addr, id, s1.node.Addr())
	}

	res := apply(t, ctx, s1.node, state.UpsertApp{App: testApp(), Now: t0})
	if r, ok := res.(*state.UpsertResult); !ok || r.App.Version != 1 {
		t.Fatalf("UpsertApp result = %#v, want *UpsertResult of version 1", res)
	}
	b, _ := state.Encode(state.DeleteApp{Name: "nope"})
	if _, err := s1.node.Apply(ctx, b); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("a rejected command gave err %v, want state.ErrNotFound", err)
	}
	apply(t, ctx, s1.node, state.UpsertNode{Node: &types.Node{ID: "n1", Name: "one"}})
	apply(t, ctx, s1.node, state.TaskUpdates{Create: []*types.Task{{ID: "t1", App: "web", Service: "api", Slot: 1}}, Now: t0})
	if err := s1.node.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	// These live only in the log after the snapshot.
	apply(t, ctx, s1.node, state.TaskUpdates{Assign: []state.Assignment{{TaskID: "t1", NodeID: "n1"}}})
	apply(t, ctx, s1.node, state.ScaleService{App: "web", Service: "api", Replicas: 4, Now: t0})
	want := dump(t, s1.store)
	addr := s1.node.Addr()
	if err := s1.node.Shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	// Same directory and address; Bootstrap is ignored on existing state.
	s2 := startServer(t, Config{ID: "m1", DataDir: dir, BindAddr: addr, Bootstrap: true})
	if err := s2.node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.node.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	for s2.node.AppliedIndex() < s2.store.View().Index() {
		select {
		case <-ctx.Done():
			t.Fatalf("applied index %d never reached the store's %d", s2.node.AppliedIndex(), s2.store.View().Index())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if got := dump(t, s2.store); got != want {
		t.Errorf("state after restart differs:\n got %s\nwant %s", got, want)
	}
	if n := s2.fsm.restores.Load(); n != 1 {
		t.Errorf("the FSM was restored from a snapshot %d times, want 1", n)
	}
	if s2.store.View().App("web").Service("api").Replicas != 4 {
		t.Error("the entry applied after the snapshot was not replayed")
	}
}

func TestNotLeader(t *testing.T) {
	// Without Bootstrap and without peers, a server never has a leader.
	s := startServer(t, Config{ID: "m1", DataDir: t.TempDir()})
	b, _ := state.Encode(state.PurgeApp{Name: "x"})
	if _, err := s.node.Apply(ctxFor(t, 5*time.Second), b); !errors.Is(err, ErrNotLeader) {
		t.Errorf("Apply on a follower: err %v, want ErrNotLeader", err)
	}
	if err := s.node.Barrier(ctxFor(t, 5*time.Second)); !errors.Is(err, ErrNotLeader) {
		t.Errorf("Barrier on a follower: err %v, want ErrNotLeader", err)
	}
	if err := s.node.WaitLeader(ctxFor(t, 100*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitLeader without a cluster: err %v, want deadline exceeded", err)
	}
	if s.node.IsLeader() {
		t.Error("an unbootstrapped server says it leads")
	}
}

// blockingFSM holds every Apply until release is closed.
type blockingFSM struct {
	raft.FSM
	release chan struct{}
}

func (f *blockingFSM) Apply(l *raft.Log) any {
	<-f.release
	return f.FSM.Apply(l)
}

func TestApplyHonoursContext(t *testing.T) {
	st, _ := state.NewStore()
	fsm := &blockingFSM{FSM: state.NewFSM(st, nil), release: make(chan struct{})}
	n, err := New(Config{ID: "m1", DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: true, Logger: testLogger(t)}, fsm)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = n.Shutdown() }()
	defer close(fsm.release) // before Shutdown, which waits for the FSM
	if err := n.WaitLeader(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	b, _ := state.Encode(state.UpsertApp{App: testApp(), Now: t0})
	_, err = n.Apply(ctxFor(t, 200*time.Millisecond), b)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Apply with a stuck FSM: err %v, want deadline exceeded", err)
	}
}

func TestTwoServers(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	s1 := startServer(t, Config{ID: "m1", DataDir: t.TempDir(), Bootstrap: true})
	s2 := startServer(t, Config{ID: "m2", DataDir: t.TempDir()})
	if err := s1.node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s1.node.AddVoter(ctx, "m2", s2.node.Addr()); err != nil {
		t.Fatal(err)
	}
	servers, err := s1.node.Servers(ctx)
	if err != nil || len(servers) != 2 || !servers[1].Voter {
		t.Fatalf("Servers() = %+v, %v; want two voters", servers, err)
	}

	apply(t, ctx, s1.node, state.UpsertApp{App: testApp(), Now: t0})
	want := s1.store.View().Index()
	if _, err := s2.store.WaitForChange(ctx, nil, want-1); err != nil {
		t.Fatalf("the follower never applied index %d: %v", want, err)
	}
	if s2.store.View().App("web") == nil {
		t.Error("the follower's store lacks the app")
	}
	if _, id := s2.node.Leader(); id != "m1" {
		t.Errorf("the follower sees leader %q, want m1", id)
	}
	if err := s2.node.WaitLeader(ctxFor(t, 300*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitLeader on a follower: err %v, want deadline exceeded", err)
	}
	b, _ := state.Encode(state.PurgeApp{Name: "web"})
	if _, err := s2.node.Apply(ctx, b); !errors.Is(err, ErrNotLeader) {
		t.Errorf("Apply on the follower: err %v, want ErrNotLeader", err)
	}
}

func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	startServer(t, Config{ID: "m1", DataDir: dir, Bootstrap: true})
	st, _ := state.NewStore()
	_, err := New(Config{ID: "m1", DataDir: dir, BindAddr: "127.0.0.1:0"}, state.NewFSM(st, nil))
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second server on the same directory: err %v, want 'in use'", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{DataDir: "d", BindAddr: "127.0.0.1:0"},
		{ID: "m1", BindAddr: "127.0.0.1:0"},
		{ID: "m1", DataDir: t.TempDir()},
		{ID: "m1", DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", AdvertiseAddr: "no port"},
		{ID: "m1", DataDir: t.TempDir(), BindAddr: "256.0.0.1:1"},
	} {
		st, _ := state.NewStore()
		if n, err := New(cfg, state.NewFSM(st, nil)); err == nil {
			_ = n.Shutdown()
			t.Errorf("New(%+v) accepted a bad config", cfg)
		}
	}
}
