package raftnode

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/state"
)

func TestForceNewClusterAfterQuorumLoss(t *testing.T) {
	ctx := ctxFor(t, 60*time.Second)
	servers := startCluster(t, ctx, 3, nil)
	first := servers[0]
	for i := range 5 {
		apply(t, ctx, first.node, upsertApp(fmt.Sprintf("app-%d", i)))
		if i == 2 { // some of the state in a snapshot, the rest in the log only
			if err := first.node.raft.Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := contents(t, first.store)
	dir, addr := first.node.dataDir, first.node.Addr()
	for _, s := range servers {
		if err := s.node.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}

	st, _ := state.NewStore()
	if err := ForceNewCluster(Config{ID: "m1", DataDir: dir, BindAddr: addr, Logger: testLogger(t)}, state.NewFSM(st, nil)); err != nil {
		t.Fatal(err)
	}
	alone := startServer(t, Config{ID: "m1", DataDir: dir, BindAddr: addr})
	if err := alone.node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	waitDump(t, ctx, alone, want)
	members, err := alone.node.Servers(ctx)
	if err != nil || len(members) != 1 || members[0].ID != "m1" || !members[0].Leader {
		t.Fatalf("members after recovery: %+v, %v; want m1 alone, leading", members, err)
	}

	apply(t, ctx, alone.node, upsertApp("after-recovery"))
	fresh := startServer(t, Config{ID: "m4", DataDir: t.TempDir()})
	if err := alone.node.AddVoter(ctx, "m4", fresh.node.Addr()); err != nil {
		t.Fatal(err)
	}
	waitDump(t, ctx, fresh, contents(t, alone.store))
	if fresh.store.View().App("app-0") == nil || fresh.store.View().App("after-recovery") == nil {
		t.Error("the joined server lacks data from before or after the recovery")
	}
}

func TestForceNewClusterRefuses(t *testing.T) {
	running := startServer(t, Config{ID: "m1", DataDir: t.TempDir(), Bootstrap: true})
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no state", Config{ID: "m1", DataDir: t.TempDir(), BindAddr: "127.0.0.1:7400"}, "no raft state"},
		{"no port", Config{ID: "m1", DataDir: t.TempDir(), BindAddr: "127.0.0.1:0"}, "cannot be dialled"},
		{"wildcard", Config{ID: "m1", DataDir: t.TempDir(), BindAddr: "0.0.0.0:7400"}, "cannot be dialled"},
		{"server running", Config{ID: "m1", DataDir: running.node.dataDir, BindAddr: running.node.Addr()}, "in use"},
		{"no ID", Config{DataDir: t.TempDir(), BindAddr: "127.0.0.1:7400"}, "ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := state.NewStore()
			err := ForceNewCluster(tc.cfg, state.NewFSM(st, nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
