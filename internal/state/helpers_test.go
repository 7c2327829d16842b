package state

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/internal/types"
)

var t0 = time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)

// harness applies commands to a fresh store through the FSM, as Raft would,
// with log indexes 1, 2, 3, ...
type harness struct {
	t     testing.TB
	store *Store
	fsm   *FSM
	index uint64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	s, err := NewStore()
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, store: s, fsm: NewFSM(s, nil)}
}

// apply runs cmd through Encode and FSM.Apply and splits the result.
func (h *harness) apply(cmd Command) (any, error) {
	h.t.Helper()
	b, err := Encode(cmd)
	if err != nil {
		h.t.Fatalf("encode %T: %v", cmd, err)
	}
	h.index++
	res := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: b})
	if err, ok := res.(error); ok {
		return nil, err
	}
	return res, nil
}

func (h *harness) mustApply(cmd Command) any {
	h.t.Helper()
	res, err := h.apply(cmd)
	if err != nil {
		h.t.Fatalf("apply %T: %v", cmd, err)
	}
	return res
}

// testApp is an app with two replicated services; api mounts secret "key".
func testApp() *types.App {
	return &types.App{
		Name: "web",
		Services: []*types.Service{
			{Name: "api", Image: "api:1", Mode: types.ModeReplicated, Replicas: 2,
				Env: map[string]string{"A": "1"}, Secrets: []types.FileRef{{Source: "key", Target: "/run/secrets/key"}}},
			{Name: "db", Image: "postgres:16", Mode: types.ModeReplicated, Replicas: 1},
		},
		Secrets: map[string]*types.Secret{"key": {Name: "key", Data: []byte("s1")}},
	}
}

func testTask(id, service string, slot int) *types.Task {
	return &types.Task{ID: id, App: "web", Service: service, Slot: slot, ServiceVersion: 1}
}

func testNode(id string) *types.Node {
	return &types.Node{ID: id, Name: "node-" + id, Address: "127.0.0.1:7000", Role: types.RoleWorker,
		Drivers: []string{types.DriverExec}, Labels: map[string]string{"zone": "a"}}
}

func ptr[T any](v T) *T { return &v }

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

// failSink fails every write, to test that Persist cancels its sink.
type failSink struct{ memSink }

func (s *failSink) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func ioNopCloser(r io.Reader) io.ReadCloser { return io.NopCloser(r) }

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
