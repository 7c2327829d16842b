package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

var updateGolden = flag.Bool("update", false, "rewrite internal/cli/testdata/*.golden")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to write it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n%s\nwant:\n%s", path, got, want)
	}
}

// psFixture is an app of two services whose tasks are in three of
// Compose's states: running (healthy), created (pending) and exited.
func psFixture(t *testing.T) string {
	f, url := newFakeManager(t)
	now := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	f.apps["hello"] = &types.App{Name: "hello", Version: 3, UpdatedAt: now.Add(-time.Hour), Services: []*types.Service{
		{Name: "web", Image: "nginx:1.27", Replicas: 2, Mode: types.ModeReplicated, Version: 2,
			Ports:  []types.Port{{Target: 80, Published: 8080, Protocol: "tcp", HostIP: "127.0.0.1"}, {Target: 9000}},
			Status: &types.ServiceStatus{Version: 2, State: types.ServiceUp}},
		{Name: "db", Image: "postgres:17", Replicas: 1, Mode: types.ModeReplicated, Version: 1, Command: []string{"postgres", "-c", "fsync=off"}},
	}}
	f.nodes = []*types.Node{{ID: "node1id0000", Name: "laptop"}}
	f.tasks = []*types.Task{
		{ID: "t1", App: "hello", Service: "web", Slot: 1, ServiceVersion: 2, NodeID: "node1id0000", DesiredState: types.DesiredRunning,
			State: types.TaskRunning, Health: types.HealthHealthy, CreatedAt: now.Add(-90 * time.Second), StartedAt: now.Add(-80 * time.Second), CreateIndex: 5},
		{ID: "t2", App: "hello", Service: "web", Slot: 2, ServiceVersion: 2, DesiredState: types.DesiredRunning,
			State: types.TaskPending, PendingReason: "0/1 nodes have port 8080/tcp free", CreatedAt: now.Add(-5 * time.Second), CreateIndex: 6},
		{ID: "t3", App: "hello", Service: "db", Slot: 1, ServiceVersion: 1, NodeID: "node1id0000", DesiredState: types.DesiredRunning,
			State: types.TaskFailed, ExitCode: intp(1), Error: "exited with code 1", Attempt: 2,
			CreatedAt: now.Add(-3 * time.Hour), StartedAt: now.Add(-3 * time.Hour), FinishedAt: now.Add(-2 * time.Minute), CreateIndex: 4},
	}
	f.index = 10
	return url
}

func TestPsFormats(t *testing.T) {
	url := psFixture(t)
	tests := []struct {
		name   string
		args   []string
		out    string // exact stdout; "" with golden set
		golden string
		err    string
	}{
		{name: "quiet", args: []string{"-q"}, out: "t3\nt1\nt2\n"},
		{name: "services", args: []string{"--services"}, out: "db\nweb\n"},
		{name: "status running", args: []string{"--status", "running", "-q"}, out: "t1\n"},
		{name: "status repeated", args: []string{"--status", "created", "--status", "exited", "-q"}, out: "t3\nt2\n"},
		{name: "filter status", args: []string{"--filter", "status=running", "-q"}, out: "t1\n"},
		{name: "bad filter", args: []string{"--filter", "name=web"}, err: `--filter takes status=STATE, as docker compose ps, not "name=web"`},
		{name: "status exited services", args: []string{"--status", "exited", "--services"}, out: "db\n"},
		{name: "template", args: []string{"--format", "{{.Name}} {{.State}} {{.Status}}"},
			out: "hello-db-1 exited Exited (1) 2 minutes ago\nhello-web-1 running Up About a minute (healthy)\nhello-web-2 created Created\n"},
		{name: "template with funcs", args: []string{"--format", "{{.Service}}: {{json .Publishers}}", "--status", "running"},
			out: `web: [{"URL":"127.0.0.1","TargetPort":80,"PublishedPort":8080,"Protocol":"tcp"},{"URL":"","TargetPort":9000,"PublishedPort":0,"Protocol":"tcp"}]` + "\n"},
		{name: "table template", args: []string{"--format", "table {{.Name}}\t{{.Node}}\t{{.Ports}}"},
			out: "NAME          NODE     PORTS\nhello-db-1    laptop   \nhello-web-1   laptop   127.0.0.1:8080->80/tcp, 9000/tcp\nhello-web-2            127.0.0.1:8080->80/tcp, 9000/tcp\n"},
		{name: "format json", args: []string{"--format", "json"}, golden: "ps.jsonl.golden"},
		{name: "o json", args: []string{"-o", "json"}, golden: "ps.json.golden"},
		{name: "json alias", args: []string{"--json"}, golden: "ps.json.golden"},
		{name: "o yaml", args: []string{"-o", "yaml"}, golden: "ps.yaml.golden"},
		{name: "table", golden: "ps.table.golden"},
		{name: "bad status", args: []string{"--status", "up"}, err: `--status takes one of paused, restarting, removing, running, dead, created, exited, not "up"`},
		{name: "bad format", args: []string{"--format", "xml"}, err: `--format takes table, json or a Go template such as '{{.Name}}', not "xml"`},
		{name: "bad template", args: []string{"--format", "{{.Nope}}"}, err: "--format: template: format:1:2: executing"},
		{name: "format and o", args: []string{"--format", "json", "-o", "yaml"}, err: "--format and -o yaml both choose the output; give one"},
		{name: "bad o", args: []string{"-o", "xml"}, err: `-o takes json or yaml, not "xml"`},
		{name: "json and o yaml", args: []string{"--json", "-o", "yaml"}, err: "--json and -o yaml ask for two formats; give one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			code := h.run(t, append([]string{"ps", "-p", "hello", "--addr", url}, tt.args...)...)
			if !exitAsWanted(t, h, code, tt.err) {
				return
			}
			if tt.golden != "" {
				golden(t, tt.golden, h.out.String())
				return
			}
			if h.out.String() != tt.out {
				t.Errorf("stdout:\n%q\nwant:\n%q", h.out, tt.out)
			}
		})
	}
}

// exitAsWanted checks a command's exit: 1 with wantErr on stderr when
// wantErr is set, else 0. It reports whether the output is worth checking
// (the command succeeded, as wanted).
func exitAsWanted(t *testing.T, h *harness, code int, wantErr string) bool {
	t.Helper()
	if wantErr != "" {
		if code != 1 || !strings.Contains(h.errOut.String(), wantErr) {
			t.Fatalf("exit %d, stderr %q; want %q", code, h.errOut, wantErr)
		}
		return false
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
	return true
}

// TestPausedState: a running task its agent saw paused is Compose's
// "paused" (ps --status paused), "Up ... (Paused)" as docker ps says it,
// and "running (paused)" in berth's table.
func TestPausedState(t *testing.T) {
	now := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		task              types.Task
		state, status, ps string
	}{
		{types.Task{State: types.TaskRunning, DesiredState: types.DesiredRunning, Paused: true, StartedAt: now.Add(-time.Hour)},
			"paused", "Up About an hour (Paused)", "running (paused)"},
		{types.Task{State: types.TaskRunning, DesiredState: types.DesiredRunning, StartedAt: now.Add(-time.Hour)},
			"running", "Up About an hour", "running"},
		{types.Task{State: types.TaskRunning, DesiredState: types.DesiredShutdown, Paused: true, StartedAt: now.Add(-time.Hour)},
			"removing", "Removing", "running (paused) -> shutdown"},
	} {
		if got := composeState(&tc.task); got != tc.state {
			t.Errorf("composeState = %q, want %q", got, tc.state)
		}
		if got := dockerStatus(&tc.task, now); got != tc.status {
			t.Errorf("dockerStatus = %q, want %q", got, tc.status)
		}
		if got := taskState(&tc.task); got != tc.ps {
			t.Errorf("taskState = %q, want %q", got, tc.ps)
		}
	}
}
