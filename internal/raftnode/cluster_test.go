package raftnode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// startCluster starts size servers on loopback: m1 bootstraps and adds the
// others as voters. tlsFor, if not nil, gives each server's TLS config.
func startCluster(t *testing.T, ctx context.Context, size int, tlsFor func(id string) *tls.Config) []*server {
	t.Helper()
	var servers []*server
	for i := 1; i <= size; i++ {
		id := fmt.Sprintf("m%d", i)
		cfg := Config{ID: id, DataDir: t.TempDir(), Bootstrap: i == 1}
		if tlsFor != nil {
			cfg.TLS = tlsFor(id)
		}
		servers = append(servers, startServer(t, cfg))
	}
	if err := servers[0].node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers[1:] {
		if err := servers[0].node.AddVoter(ctx, string(s.node.id), s.node.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	return servers
}

// waitForLeader returns the first of servers to lead, or fails the test
// when none does before ctx ends.
func waitForLeader(t *testing.T, ctx context.Context, servers ...*server) *server {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, s := range servers {
			if s.node.leads() {
				return s
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no leader elected: %v", ctx.Err())
		case <-tick.C:
		}
	}
}

// waitApplied waits until s's store has applied index.
func waitApplied(t *testing.T, ctx context.Context, s *server, index uint64) {
	t.Helper()
	if got, err := s.store.WaitForChange(ctx, nil, index-1); err != nil {
		t.Fatalf("%s applied up to %d, never %d: %v", s.node.id, got, index, err)
	}
}

func upsertApp(name string) state.UpsertApp {
	return state.UpsertApp{Now: t0, App: &types.App{Name: name, Services: []*types.Service{
		{Name: "api", Image: "api:1", Mode: types.ModeReplicated, Replicas: 1},
	}}}
}

func TestFailoverKeepsAcknowledgedWrites(t *testing.T) {
	ctx := ctxFor(t, 60*time.Second)
	ca := newTestCA(t, "cluster")
	servers := startCluster(t, ctx, 3, func(id string) *tls.Config { return ca.serverTLS(t, id) })
	old := servers[0]

	var acked []string
	for i := range 20 {
		name := fmt.Sprintf("app-%d", i)
		apply(t, ctx, old.node, upsertApp(name))
		acked = append(acked, name)
	}
	members, err := servers[1].node.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 3 || !members[0].Leader || members[1].Leader || members[0].Address != old.node.Addr() {
		t.Errorf("a follower lists members %+v; want m1 leading and two other voters", members)
	}

	if err := old.node.Shutdown(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	electCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	leader := waitForLeader(t, electCtx, servers[1], servers[2])
	t.Logf("%s elected %v after the leader stopped", leader.node.id, time.Since(start))

	if err := leader.node.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	res := apply(t, ctx, leader.node, upsertApp("after-failover"))
	index := res.(*state.UpsertResult).App.ModifyIndex
	for _, s := range servers[1:] {
		waitApplied(t, ctx, s, index)
		v := s.store.View()
		for _, name := range append(acked, "after-failover") {
			if v.App(name) == nil {
				t.Errorf("%s lost acknowledged app %s", s.node.id, name)
			}
		}
	}

	if err := leader.node.RemoveServer(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	members, err = leader.node.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 {
		t.Fatalf("after removing m1: members %+v, want 2", members)
	}
	for _, m := range members {
		if m.ID == "m1" || m.Leader != (m.ID == string(leader.node.id)) {
			t.Errorf("member %+v: want m1 gone and only %s leading", m, leader.node.id)
		}
	}
}

func TestQuorumLossStopsWrites(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	servers := startCluster(t, ctx, 3, nil)
	leader := servers[0]
	apply(t, ctx, leader.node, upsertApp("before"))
	for _, s := range servers[1:] {
		if err := s.node.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
	// The leader steps down once it has not heard from a majority for a
	// lease; an apply in flight or after that fails as not-the-leader.
	b, err := state.Encode(upsertApp("after"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.node.Apply(ctx, b); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("apply without a quorum: err %v, want ErrNotLeader", err)
	}
	if leader.node.IsLeader() {
		t.Error("the server still says it leads without a quorum")
	}
	if leader.store.View().App("after") != nil || leader.store.View().App("before") == nil {
		t.Error("without a quorum the store should hold the old state only")
	}
}
