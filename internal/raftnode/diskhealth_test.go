package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft-wal/types"
)

func TestDiskHealthRecordsStoreWrites(t *testing.T) {
	h := newDiskHealth(t.TempDir(), hclog.NewNullLogger())
	steps := []struct {
		name    string
		store   error
		probe   error
		healthy bool
		problem string
	}{
		{"fresh", nil, nil, true, ""},
		{"a failed append", syscall.ENOSPC, nil, false, "writing the Raft log failed: no space left on device"},
		{"a failed probe behind it", syscall.ENOSPC, errors.New("probe failed"), false, "writing the Raft log failed"},
		{"the append succeeds, the probe still fails", nil, errors.New("probe failed"), false, "probe failed"},
		{"both succeed", nil, nil, true, ""},
		{"a sealed segment waits for room to reopen", types.ErrSealed, nil, false, "the log is reopened once"},
		{"recovered", nil, nil, true, ""},
	}
	for _, st := range steps {
		if err := h.recordStore(st.store); !errors.Is(err, st.store) {
			t.Fatalf("%s: recordStore returned %v, want the store's own %v", st.name, err, st.store)
		}
		h.recordProbe(st.probe)
		got := h.Health()
		if got.Healthy != st.healthy || !strings.Contains(got.Problem, st.problem) || (st.healthy && got.Problem != "") {
			t.Errorf("%s: health %+v, want healthy=%v with problem %q", st.name, got, st.healthy, st.problem)
		}
	}
}

// mountTmpfs mounts a tmpfs of sizeMiB on a fresh directory for the test:
// a real small file system that fills. It needs root (CI runs as root).
func mountTmpfs(t *testing.T, sizeMiB int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill needs root; run the test as root to check full-disk handling")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dm,mode=0700", sizeMiB)); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file in dir until the file system is full, and returns a
// func that removes it.
func fill(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = 0xaa
	}
	for {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling %s stopped with %v, want no space left", dir, err)
	}
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckDataDir(t *testing.T) {
	small := mountTmpfs(t, 32)
	if err := CheckDataDir(filepath.Join(small, "data")); err == nil || !strings.Contains(err.Error(), "MiB free; a manager needs at least 80.0 MiB") {
		t.Errorf("a 32 MiB file system: %v, want a refusal naming the space needed", err)
	}
	big := mountTmpfs(t, 128)
	if err := CheckDataDir(filepath.Join(big, "data")); err != nil {
		t.Errorf("a 128 MiB file system, empty: %v", err)
	}
	fill(t, big)
	if err := CheckDataDir(filepath.Join(big, "data")); err == nil || !strings.Contains(err.Error(), "0.0 MiB free") {
		t.Errorf("a full file system: %v, want a refusal", err)
	}
}

// TestFullDiskHandsLeadershipAway: the leader's data directory, a small
// tmpfs, fills up. It marks itself unhealthy and hands leadership to a
// follower; the cluster goes on committing; once space returns it is
// healthy again, without a restart, and applies what it missed.
func TestFullDiskHandsLeadershipAway(t *testing.T) {
	dir := mountTmpfs(t, 128)
	ctx := ctxFor(t, 60*time.Second)
	var servers []*server
	for i := 1; i <= 3; i++ {
		cfg := Config{ID: fmt.Sprintf("m%d", i), DataDir: t.TempDir(), Bootstrap: i == 1}
		if i == 1 {
			cfg.DataDir = dir
		}
		servers = append(servers, startServer(t, cfg))
	}
	m1 := servers[0]
	if err := m1.node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers[1:] {
		if err := m1.node.AddVoter(ctx, string(s.node.id), s.node.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	apply(t, ctx, m1.node, upsertApp("before"))

	free := fill(t, dir)
	filled := time.Now()
	waitUntil(t, ctx, "m1 unhealthy", func() bool { return !m1.node.DiskHealth().Healthy })
	detected := time.Since(filled)
	waitUntil(t, ctx, "a healthy follower to lead", func() bool { return servers[1].node.leads() || servers[2].node.leads() })
	handed := time.Since(filled)
	t.Logf("full disk detected after %v, leadership handed away after %v; problem: %s", detected, handed, m1.node.DiskHealth().Problem)
	if m1.node.IsLeader() {
		t.Fatal("the unhealthy manager still leads")
	}
	leader := waitForLeader(t, ctx, servers[1], servers[2])
	apply(t, ctx, leader.node, upsertApp("during"))

	free()
	freed := time.Now()
	waitUntil(t, ctx, "m1 healthy again", func() bool { return m1.node.DiskHealth().Healthy })
	t.Logf("recovered %v after space returned", time.Since(freed))
	apply(t, ctx, leader.node, upsertApp("after"))
	waitUntil(t, ctx, "m1 to apply the writes made while it was full", func() bool {
		v := m1.store.View()
		return v.App("during") != nil && v.App("after") != nil
	})
}

func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// TestFailedAppendMarksUnhealthy: the log outgrows a small disk. Its first
// 64 MiB segment fits, the next cannot be created, and every append fails
// from then on, while the disk still has more than the reserve free. The
// failed appends alone mark the server unhealthy; once the disk grows the
// log is reopened in place and takes appends again, without a restart, and
// a restart later opens it too.
func TestFailedAppendMarksUnhealthy(t *testing.T) {
	dir := mountTmpfs(t, 100)
	ctx := ctxFor(t, 120*time.Second)
	cfg := Config{ID: "m1", DataDir: dir, Bootstrap: true}
	s := startServer(t, cfg)
	if err := s.node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 400<<10)
	var failed error
	for i := 0; i < 400 && failed == nil; i++ {
		cmd := upsertApp(fmt.Sprintf("app-%d", i))
		cmd.App.Services[0].Command = []string{big}
		b, err := state.Encode(&cmd)
		if err != nil {
			t.Fatal(err)
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, failed = s.node.Apply(actx, b)
		cancel()
	}
	if failed == nil {
		t.Fatal("400 appends of 400 KiB fit in a 100 MiB disk")
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	waitUntil(t, wctx, "the server unhealthy from its failed appends", func() bool { return !s.node.DiskHealth().Healthy })
	h := s.node.DiskHealth()
	t.Logf("append failed with %v; health: %+v", failed, h)
	if !strings.Contains(h.Problem, "writing the Raft log failed") {
		t.Errorf("problem %q, want the failed append", h.Problem)
	}
	free, _, err := freeBytes(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s free after the failed append", mib(free))

	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=200m"); err != nil {
		t.Fatalf("grow the tmpfs: %v", err)
	}
	grown := time.Now()
	waitUntil(t, ctx, "an append to succeed once the disk has room", func() bool {
		b, err := state.Encode(&state.UpsertApp{Now: t0, App: upsertApp("after-growth").App})
		if err != nil {
			t.Fatal(err)
		}
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err = s.node.Apply(actx, b)
		return err == nil
	})
	if h := s.node.DiskHealth(); !h.Healthy {
		t.Errorf("appends succeed again but the health is %+v", h)
	}
	t.Logf("appends succeed %v after the disk grew", time.Since(grown))

	if err := s.node.Shutdown(); err != nil {
		t.Fatal(err)
	}
	again := startServer(t, cfg)
	if err := again.node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	apply(t, ctx, again.node, upsertApp("after-restart"))
	if h := again.node.DiskHealth(); !h.Healthy {
		t.Errorf("restarted with room: %+v", h)
	}
	for _, name := range []string{"after-growth", "after-restart"} {
		if again.store.View().App(name) == nil {
			t.Errorf("app %s is not in the restarted server's state", name)
		}
	}
}
