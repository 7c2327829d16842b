package execdriver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/testimage"
	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/testkit"
)

type env struct {
	t       *testing.T
	ctx     context.Context
	app     string // the test app binary
	dataDir string
	shm     string // secretsDir, made on first use
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	bin, err := testimage.AppBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, app: bin, dataDir: t.TempDir()}
}

// driver makes a Driver on the env's data directory; every task still
// running at the end of the test is killed.
// secretsDir is a directory of the test's on /dev/shm (a tmpfs).
func (e *env) secretsDir() string {
	e.t.Helper()
	if e.shm == "" {
		dir, err := os.MkdirTemp("/dev/shm", "berth-test-")
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() { os.RemoveAll(dir) })
		e.shm = dir
	}
	return e.shm
}

func (e *env) driver() *Driver {
	e.t.Helper()
	d, err := New(Config{NodeID: "n1", DataDir: e.dataDir, SecretsDir: e.secretsDir(), PollEvery: 50 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		list, _ := d.List(context.Background())
		for _, st := range list {
			_ = d.Remove(context.Background(), st.TaskID)
		}
		d.Close()
	})
	return d
}

func (e *env) task(mutate func(*types.Service)) *driver.TaskConfig {
	s := &types.Service{Name: "web", Command: []string{e.app}, Env: map[string]string{}}
	if mutate != nil {
		mutate(s)
	}
	return &driver.TaskConfig{
		Task:    &types.Task{ID: randID(), App: "shop", Service: s.Name, Slot: 1},
		Service: s,
	}
}

func (e *env) start(d *Driver, cfg *driver.TaskConfig) *driver.Status {
	e.t.Helper()
	st, err := d.Start(e.ctx, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// serving sets PORT to a free port and returns the app's base URL.
func serving(t *testing.T) (func(*types.Service), string) {
	p := freePort(t)
	return func(s *types.Service) { s.Env["PORT"] = p }, "http://127.0.0.1:" + p
}

func TestStartServeStop(t *testing.T) {
	e := newEnv(t)
	d := e.driver()
	port, url := serving(t)
	cfg := e.task(func(s *types.Service) { port(s); s.Env["MESSAGE"] = "exec hello" })
	st := e.start(d, cfg)
	if st.State != driver.StateRunning || !strings.HasPrefix(st.ContainerID, "pid:") {
		t.Fatalf("status after start: %+v", st)
	}
	if body := get(t, url+"/"); !strings.Contains(body, "exec hello") {
		t.Fatalf("GET / = %q", body)
	}
	if again := e.start(d, cfg); again.ContainerID != st.ContainerID {
		t.Fatalf("second Start ran %s, want adoption of %s", again.ContainerID, st.ContainerID)
	}
	if err := d.Stop(e.ctx, cfg.Task.ID, 5*time.Second, ""); err != nil {
		t.Fatal(err)
	}
	st, err := d.Inspect(e.ctx, cfg.Task.ID)
	if err != nil || st.State != driver.StateExited || st.ExitCode != 0 {
		t.Fatalf("after SIGTERM: %+v, %v; want exited 0", st, err)
	}
	var logs strings.Builder
	if err := d.Logs(e.ctx, cfg.Task.ID, driver.LogOptions{Tail: 1}, &logs); err != nil {
		t.Fatal(err)
	}
	if logs.String() != "signal received, shutting down\n" {
		t.Fatalf("last log line = %q", logs.String())
	}
}

func TestStopKillsGroupAfterGrace(t *testing.T) {
	e := newEnv(t)
	d := e.driver()
	dir := t.TempDir()
	// The shell ignores SIGUSR1, so only the kill after grace ends it; its
	// background sleep shows that the whole process group is killed.
	cfg := e.task(func(s *types.Service) {
		s.Command = []string{"/bin/sh", "-c", "trap '' USR1; sleep 300 & echo $! > child.pid; wait"}
		s.WorkingDir = dir
	})
	e.start(d, cfg)
	childPID := waitFile(t, filepath.Join(dir, "child.pid"))
	start := time.Now()
	if err := d.Stop(e.ctx, cfg.Task.ID, 500*time.Millisecond, "SIGUSR1"); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 500*time.Millisecond {
		t.Fatal("Stop returned before the grace period although the signal was ignored")
	}
	st, _ := d.Inspect(e.ctx, cfg.Task.ID)
	if st.ExitCode != 128+9 {
		t.Fatalf("exit code %d, want 137 (killed)", st.ExitCode)
	}
	pid, _ := strconv.Atoi(childPID)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, zombie, err := procStart(pid)
		if err != nil || zombie {
			break // the grandchild died with its group
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d survived the group kill", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExitCodeEventAndLogs(t *testing.T) {
	e := newEnv(t)
	d := e.driver()
	events, _ := d.Events(e.ctx)
	cfg := e.task(func(s *types.Service) { s.Env["MODE"], s.Env["EXIT_CODE"] = "oneshot", "3" })
	e.start(d, cfg)
	st := waitEvent(t, events, cfg.Task.ID, func(st *driver.Status) bool { return st.State == driver.StateExited })
	if st.ExitCode != 3 || st.FinishedAt.IsZero() {
		t.Fatalf("exit event %+v, want exit code 3", st)
	}
	var logs strings.Builder
	if err := d.Logs(e.ctx, cfg.Task.ID, driver.LogOptions{Follow: true}, &logs); err != nil || logs.String() != "oneshot: done\n" {
		t.Fatalf("logs = %q, %v", logs.String(), err)
	}
}

func TestHealthTurnsHealthyThenUnhealthy(t *testing.T) {
	e := newEnv(t)
	d := e.driver()
	events, _ := d.Events(e.ctx)
	port, _ := serving(t)
	flag := filepath.Join(t.TempDir(), "unhealthy")
	cfg := e.task(func(s *types.Service) {
		port(s)
		s.Env["UNHEALTHY_FILE"] = flag
		s.Healthcheck = &types.Healthcheck{
			Test:     []string{"CMD", e.app, "healthcheck"},
			Interval: 100 * time.Millisecond, Timeout: 2 * time.Second, Retries: 2,
		}
	})
	if st := e.start(d, cfg); st.Health != types.HealthStarting {
		t.Fatalf("health at start = %q, want starting", st.Health)
	}
	healthy := func(h types.Health) func(*driver.Status) bool {
		return func(st *driver.Status) bool { return st.Health == h }
	}
	waitEvent(t, events, cfg.Task.ID, healthy(types.HealthHealthy))
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st := waitEvent(t, events, cfg.Task.ID, healthy(types.HealthUnhealthy))
	// The failing probe's output comes with it, as `docker inspect` shows it.
	if !strings.Contains(st.HealthOutput, "health: 500") {
		t.Fatalf("unhealthy with health output %q, want the probe's \"health: 500 ...\"", st.HealthOutput)
	}
}

func TestReattachAfterNewDriver(t *testing.T) {
	e := newEnv(t)
	d1 := e.driver()
	port, url := serving(t)
	cfg := e.task(port)
	first := e.start(d1, cfg)
	get(t, url+"/")
	d1.Close()

	d2 := e.driver()
	list, err := d2.List(e.ctx)
	if err != nil || len(list) != 1 || list[0].ContainerID != first.ContainerID || list[0].State != driver.StateRunning {
		t.Fatalf("new driver lists %+v, %v; want the running task %s", list, err, first.ContainerID)
	}
	if again := e.start(d2, cfg); again.ContainerID != first.ContainerID {
		t.Fatalf("Start on the new driver ran %s, want adoption", again.ContainerID)
	}
	events, _ := d2.Events(e.ctx)
	if err := d2.Stop(e.ctx, cfg.Task.ID, 5*time.Second, "SIGTERM"); err != nil {
		t.Fatal(err)
	}
	// The first driver's waiter (same OS process) reaped the child and
	// recorded its exit code, which the new driver picks up.
	st := waitEvent(t, events, cfg.Task.ID, func(st *driver.Status) bool { return st.State == driver.StateExited })
	if st.ExitCode != 0 {
		t.Fatalf("exit after re-attach: %+v, want 0 from the recorded state", st)
	}
}

func TestReattachUnknownExit(t *testing.T) {
	e := newEnv(t)
	d := e.driver()
	// A record of a process that is gone and never recorded its exit: what
	// an agent finds after a restart when its task ended in between.
	dir := filepath.Join(e.dataDir, "tasks", "gone")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	rec := &record{TaskID: "gone", NodeID: "n1", PID: os.Getpid(), ProcStart: 1, StartedAt: time.Now()}
	if err := rec.save(dir); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d = e.driver()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := d.Inspect(e.ctx, "gone")
		if err != nil {
			t.Fatal(err)
		}
		if st.State == driver.StateExited {
			if st.ExitCode != -1 || !strings.Contains(st.Error, "unknown") {
				t.Fatalf("status %+v, want exit -1 and an error saying it is unknown", st)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a reused pid was taken for the task's process")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStartErrors(t *testing.T) {
	e := newEnv(t)
	d := e.driver()
	tests := []struct {
		name   string
		mutate func(*types.Service)
		want   string
	}{
		{"no command", func(s *types.Service) { s.Command = nil }, "no command"},
		{"missing binary", func(s *types.Service) { s.Command = []string{"/nonexistent/berth"} }, "no such file"},
		{"undefined secret", func(s *types.Service) { s.Secrets = []types.FileRef{{Source: "x"}} }, `secret "x" is not defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Start(e.ctx, e.task(tt.mutate))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := d.Inspect(e.ctx, "nope"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Inspect of unknown task: %v", err)
	}
}

func TestSecretsUnderSecretsDir(t *testing.T) {
	e := newEnv(t)
	d := e.driver()
	port, url := serving(t)
	cfg := e.task(func(s *types.Service) {
		port(s)
		s.Secrets = []types.FileRef{{Source: "token", Target: "/run/secrets/token"}}
	})
	cfg.Secrets = map[string]*types.Secret{"token": {Data: []byte("s3cret")}}
	e.start(d, cfg)
	path := filepath.Join(e.secretsDir(), cfg.Task.ID, "run", "secrets", "token")
	if body := get(t, url+"/file?path="+path); body != "s3cret" {
		t.Fatalf("secret read by the task = %q", body)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o400 {
		t.Fatalf("secret mode %v, %v; want 0400", fi.Mode(), err)
	}
	// A stopped task (scale to 0) is kept for its logs, its secrets not.
	if err := d.Stop(e.ctx, cfg.Task.ID, 5*time.Second, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(filepath.Dir(path)))); !os.IsNotExist(err) {
		t.Fatalf("the task's secrets outlived its stop: %v", err)
	}
	if err := d.Remove(e.ctx, cfg.Task.ID); err != nil {
		t.Fatal(err)
	}
}

// Secrets never go to a persistent disk: a SecretsDir that is not a tmpfs
// makes a task with secrets fail to start, with the reason.
func TestSecretsRefusedOffTmpfs(t *testing.T) {
	e := newEnv(t)
	d, err := New(Config{NodeID: "n1", DataDir: e.dataDir, SecretsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	cfg := e.task(func(s *types.Service) {
		s.Secrets = []types.FileRef{{Source: "token", Target: "/run/secrets/token"}}
	})
	cfg.Secrets = map[string]*types.Secret{"token": {Data: []byte("s3cret")}}
	if _, err := d.Start(e.ctx, cfg); err == nil || !strings.Contains(err.Error(), "not on a tmpfs") {
		t.Fatalf("start with secrets off tmpfs: %v", err)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]string{"": "terminated", "SIGHUP": "hangup", "int": "interrupt", "9": "killed"} {
		sig, err := parseSignal(in)
		if err != nil || sig.String() != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %s", in, sig, err, want)
		}
	}
	if _, err := parseSignal("SIGNOPE"); err == nil {
		t.Error("parseSignal accepted SIGNOPE")
	}
}

func waitEvent(t *testing.T, ch <-chan *driver.Status, taskID string, ok func(*driver.Status) bool) *driver.Status {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case st := <-ch:
			if st.TaskID == taskID && ok(st) {
				return st
			}
		case <-timeout:
			t.Fatalf("no matching event for task %s", taskID)
		}
	}
}

func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never written", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	return strconv.Itoa(testkit.FreePort(t))
}

func randID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestShellHealthcheckHonoursStartPeriod(t *testing.T) {
	e := newEnv(t)
	d := e.driver()
	events, _ := d.Events(e.ctx)
	port, _ := serving(t)
	const startPeriod = 600 * time.Millisecond
	cfg := e.task(func(s *types.Service) {
		port(s)
		s.Healthcheck = &types.Healthcheck{
			Test:     []string{"CMD-SHELL", "test -n \"$NEVER_SET\""},
			Interval: 50 * time.Millisecond, Retries: 1, StartPeriod: startPeriod,
		}
	})
	st := e.start(d, cfg)
	got := waitEvent(t, events, cfg.Task.ID, func(st *driver.Status) bool { return st.Health == types.HealthUnhealthy })
	if elapsed := time.Since(st.StartedAt); elapsed < startPeriod {
		t.Fatalf("unhealthy after %v, inside the start period of %v", elapsed, startPeriod)
	}
	if got.State != driver.StateRunning {
		t.Fatalf("unhealthy task state %s, want still running", got.State)
	}
}
