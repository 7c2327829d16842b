package raftnode

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// upgradeFixture is a manager's data directory written by berth at commit
// d530264, before log entries carried checksums (see its README.md).
const upgradeFixture = "testdata/upgrade-d530264"

// TestOpensDataOfD530264 opens the fixture with this code: raft-wal reads
// the old segment, every old entry decodes (none halts the FSM), and the app
// and tasks the old manager held are all there. An entry written now, in
// the new format, replays beside the old ones after a restart.
func TestOpensDataOfD530264(t *testing.T) {
	dir := copyFixture(t, upgradeFixture)
	id, err := os.ReadFile(filepath.Join(dir, "server-id"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{ID: strings.TrimSpace(string(id)), DataDir: dir, BindAddr: "127.0.0.1:0"}

	s := startServer(t, cfg)
	ctx := ctxFor(t, 60*time.Second)
	if err := s.node.WaitLeader(ctx); err != nil {
		t.Fatalf("the fixture's only voter did not lead: %v", err)
	}
	waitFor(t, 30*time.Second, func() bool { return notHalted(t, s) && s.store.View().App("shop") != nil })
	checkShop(t, s.store, 3)
	apply(t, ctx, s.node, state.ScaleService{App: "shop", Service: "web", Replicas: 5, Now: t0})
	if err := s.node.Shutdown(); err != nil {
		t.Fatal(err)
	}

	s = startServer(t, cfg)
	if err := s.node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool {
		a := s.store.View().App("shop")
		notHalted(t, s)
		return a != nil && a.Services[0].Replicas == 5
	})
	checkShop(t, s.store, 5)
	notHalted(t, s)
}

// notHalted fails the test at once if s's FSM met an entry it cannot decode.
func notHalted(t *testing.T, s *server) bool {
	t.Helper()
	if err := s.fsm.FSM.(*state.FSM).HaltErr(); err != nil {
		t.Fatalf("an entry of the fixture halted the FSM: %v", err)
	}
	return true
}

// checkShop checks what the old manager held: app shop, web scaled to
// three and worker to one, their four tasks placed and running on node
// c651af1ebabb3260. webReplicas is what web's spec says now.
func checkShop(t *testing.T, st *state.Store, webReplicas int) {
	t.Helper()
	v := st.View()
	app := v.App("shop")
	replicas := map[string]int{}
	for _, svc := range app.Services {
		replicas[svc.Name] = svc.Replicas
	}
	if replicas["web"] != webReplicas || replicas["worker"] != 1 || len(replicas) != 2 {
		t.Errorf("shop's services have replicas %v, want web=%d worker=1", replicas, webReplicas)
	}
	var got []string
	for _, task := range v.Tasks(state.TaskFilter{App: "shop"}) {
		if task.State != types.TaskRunning || task.DesiredState != types.DesiredRunning || task.NodeID != "c651af1ebabb3260" {
			t.Errorf("task %s is %s/%s on %q, want running on c651af1ebabb3260", task.ID, task.State, task.DesiredState, task.NodeID)
		}
		got = append(got, task.ID)
	}
	sort.Strings(got)
	want := []string{"157d94df5cd36c98", "51cbafd23ea3b3cb", "b8474b75155d253e", "fe725436dc9783e1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("tasks of shop = %v, want %v", got, want)
	}
	if n := v.Node("c651af1ebabb3260"); n == nil || n.Name != "fixture" {
		t.Errorf("node c651af1ebabb3260 = %+v, want the fixture's node", n)
	}
}

// copyFixture copies a data directory into a fresh one the test may change.
func copyFixture(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	return dst
}

// waitFor waits until cond holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
