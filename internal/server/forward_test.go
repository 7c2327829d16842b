package server

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/types"
)

// runningManager is one in-process manager of a test cluster.
type runningManager struct {
	s    *Server
	stop func()
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func runManager(t *testing.T, name, join, token string) *runningManager {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	s, err := New(Config{Name: name, DataDir: dir, HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t), ClusterAddr: freeAddr(t),
		Join: join, JoinToken: token, HeartbeatTTL: time.Minute, Logger: testLogger(t, name)})
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	m := &runningManager{s: s, stop: func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}}
	t.Cleanup(m.stop)
	return m
}

// startCluster runs three managers in this process, all voters.
func startCluster(t *testing.T) []*runningManager {
	t.Helper()
	first := runManager(t, "m1", "", "")
	wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := first.s.WaitWorkerToken(wctx); err != nil {
		t.Fatal(err)
	}
	// Joins wait until the first leader has recorded itself: its
	// takeOffice forgets managers not yet in the Raft configuration, and
	// would forget one that joined meanwhile.
	waitFor(t, 20*time.Second, "m1 in the cluster record", func() bool {
		cl := first.s.store.View().Cluster()
		return cl != nil && cl.Manager(first.s.id) != nil
	})
	token, err := first.s.openToken(first.s.store.View().Cluster(), pki.RoleManager)
	if err != nil {
		t.Fatal(err)
	}
	ms := []*runningManager{first}
	for _, name := range []string{"m2", "m3"} {
		ms = append(ms, runManager(t, name, first.s.ClusterAddr(), token))
	}
	waitFor(t, 60*time.Second, "three voters", func() bool {
		servers, err := first.s.raft.Servers(wctx)
		if err != nil || len(servers) != 3 {
			return false
		}
		for _, sv := range servers {
			if !sv.Voter {
				return false
			}
		}
		return true
	})
	return ms
}

// A write sent to a follower just after the leader went away is not lost
// to a 502: the follower retries it on the leader the cluster elects next.
func TestForwardedWriteRetriedOnNewLeader(t *testing.T) {
	ms := startCluster(t)
	var leader, follower *runningManager
	waitFor(t, 10*time.Second, "a leader the followers know", func() bool {
		leader, follower = nil, nil
		for _, m := range ms {
			if m.s.raft.IsLeader() {
				leader = m
			}
		}
		for _, m := range ms {
			_, id := m.s.raft.Leader()
			if cl := m.s.store.View().Cluster(); m != leader && leader != nil && id == leader.s.id && cl != nil && cl.Manager(id) != nil {
				follower = m
			}
		}
		return leader != nil && follower != nil
	})
	// No retries by the client: the follower must do them.
	c := api.NewClient(follower.s.Addr(), api.WithTimeouts(30*time.Second, 0), api.WithToken(ms[0].s.AdminToken()))
	ctx := context.Background()
	leader.stop()
	app := &types.App{Name: "a", Services: []*types.Service{{Name: "s", Driver: types.DriverExec, Command: []string{"sleep", "60"}, Replicas: 1}}}
	start := time.Now()
	if _, err := c.SubmitApp(ctx, app); err != nil {
		t.Fatalf("write through %s right after the leader stopped: %v", follower.s.cfg.Name, err)
	}
	t.Logf("the write went through %s after %s", follower.s.cfg.Name, time.Since(start).Round(time.Millisecond))
	// A write that is not idempotent is retried too when it never reached
	// the old leader.
	if _, err := c.RotateToken(ctx, "worker"); err != nil {
		t.Fatalf("token rotation after the election: %v", err)
	}
	if got, err := c.GetApp(ctx, "a"); err != nil || got.Name != "a" {
		t.Fatalf("the app after the election: %+v, %v", got, err)
	}
}

// testLogger logs to t, shown when the test fails.
func testLogger(t *testing.T, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("manager", name)
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
