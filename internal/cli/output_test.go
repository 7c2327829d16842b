package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

func TestNormalizeArgs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"-f a.yaml logs -f web", "--file a.yaml logs -f web"},
		{"-fa.yaml up", "--file=a.yaml up"},
		{"-f=a.yaml up", "--file=a.yaml up"},
		{"--addr h:1 -p x -f a.yaml ps", "--addr h:1 --project-name x --file a.yaml ps"},
		{"-p x run -p 8080:80 web", "--project-name x run -p 8080:80 web"},
		{"-pshop run web", "--project-name=shop run web"},
		{"--json -f a.yaml ps", "--json --file a.yaml ps"},
		{"logs -f", "logs -f"},
		{"up -f a.yaml", "up -f a.yaml"},
	}
	for _, tc := range tests {
		got := strings.Join(normalizeArgs(strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("normalizeArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLogsFileFlagBeforeVerb(t *testing.T) {
	f, url := newFakeManager(t)
	f.apps["hello"] = &types.App{Name: "hello"}
	h := newHarness(t)
	if code := h.run(t, "-f", "a.yaml", "logs", "--addr", url); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
	if got := h.loader.got.Files; len(got) != 1 || got[0] != "a.yaml" {
		t.Errorf("files = %v, want [a.yaml]", got)
	}
}

func TestWriteTaskTable(t *testing.T) {
	now := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	app := &types.App{Name: "hello", Services: []*types.Service{
		{Name: "web", Ports: []types.Port{
			{Target: 80, Published: 8080, Protocol: "tcp", HostIP: "127.0.0.1"},
			{Target: 53, Published: 53, Protocol: "udp"},
			{Target: 9000, Protocol: "tcp"},
		}},
		{Name: "db"},
	}}
	tasks := []*types.Task{
		{App: "hello", Service: "web", Slot: 1, NodeID: "n1", DesiredState: types.DesiredRunning, State: types.TaskRunning,
			Health: types.HealthHealthy, Attempt: 2, CreatedAt: now.Add(-90 * time.Second)},
		{App: "hello", Service: "web", Slot: 2, DesiredState: types.DesiredRunning, State: types.TaskPending,
			PendingReason: "0/1 nodes available: 1 port 8080/tcp in use", CreatedAt: now.Add(-5 * time.Second)},
		{App: "hello", Service: "db", Slot: 1, NodeID: "abcdef0123456789", DesiredState: types.DesiredShutdown,
			State: types.TaskRunning, CreatedAt: now.Add(-50 * time.Hour)},
		{App: "hello", Service: "db", Slot: 2, NodeID: "n1", DesiredState: types.DesiredShutdown,
			State: types.TaskFailed, ExitCode: intp(137), Error: "killed", CreatedAt: now.Add(-3 * time.Hour)},
	}
	var b strings.Builder
	if err := writeTaskTable(&b, app, tasks, map[string]string{"n1": "laptop"}, now); err != nil {
		t.Fatal(err)
	}
	want := `SERVICE   TASK          NODE       STATE                                                  HEALTH    PORTS                                                  RESTARTS   AGE
web       hello-web-1   laptop     running                                                healthy   127.0.0.1:8080->80/tcp, 0.0.0.0:53->53/udp, 9000/tcp   2          1m
web       hello-web-2   -          pending: 0/1 nodes available: 1 port 8080/tcp in use   -         127.0.0.1:8080->80/tcp, 0.0.0.0:53->53/udp, 9000/tcp   0          5s
db        hello-db-1    abcdef01   running -> shutdown                                    -         -                                                      0          2d
db        hello-db-2    laptop     failed (exit 137): killed                              -         -                                                      0          3h
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestCurrentTasks(t *testing.T) {
	tasks := []*types.Task{
		{ID: "old", Service: "web", Slot: 1, State: types.TaskFailed, CreateIndex: 1},
		{ID: "new", Service: "web", Slot: 1, State: types.TaskRunning, CreateIndex: 2, Attempt: 1},
		{ID: "done1", Service: "job", Slot: 1, State: types.TaskFailed, CreateIndex: 3},
		{ID: "done2", Service: "job", Slot: 1, State: types.TaskComplete, CreateIndex: 4, Attempt: 1},
		{ID: "g", Service: "agent", NodeID: "n1", State: types.TaskRunning, CreateIndex: 5},
	}
	got := currentTasks(tasks)
	sortTasks(got)
	var ids []string
	for _, t := range got {
		ids = append(ids, t.ID)
	}
	if want := "g done2 new"; strings.Join(ids, " ") != want {
		t.Errorf("current = %v, want %s", ids, want)
	}
}

func TestDescribeError(t *testing.T) {
	e := &env{global: globalOptions{addr: "http://127.0.0.1:7700"}}
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("list tasks: %w", syscall.ECONNREFUSED),
			"no berth manager answers at http://127.0.0.1:7700; start one with `berth server --dev` or run `berth up`"},
		{&api.Error{Status: 400, Message: "services.web.replicas: must not be negative", Field: "services.web.replicas"},
			"services.web.replicas: must not be negative"},
		{fmt.Errorf("follow: %w", context.Canceled), "interrupted"},
		{errors.New("service web: task hello-web-1 was rejected: image missing"),
			"service web: task hello-web-1 was rejected: image missing"},
	}
	for _, tc := range tests {
		if got := describeError(tc.err, e); got != tc.want {
			t.Errorf("describeError(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestPrefixWriterColors(t *testing.T) {
	var b strings.Builder
	p := newPrefixWriter(&b, true)
	p.grow("web-1")
	p.grow("worker-10")
	if err := p.copyLines("web-1", strings.NewReader("hi\nthere")); err != nil {
		t.Fatal(err)
	}
	want := "\x1b[36mweb-1      |\x1b[0m hi\n\x1b[36mweb-1      |\x1b[0m there\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestLogsFollowAttachesNewTasks(t *testing.T) {
	f, url := newFakeManager(t)
	f.apps["hello"] = &types.App{Name: "hello"}
	f.addTask("hello", "web", 1, "first\n")
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"logs", "-f", "--addr", url}, h.e) }()
	waitFor(t, func() bool { return strings.Contains(h.out.String(), "web-1  | first") })
	f.addTask("hello", "web", 2, "second\n")
	waitFor(t, func() bool { return strings.Contains(h.out.String(), "web-2  | second") })
	cancel()
	if c := <-code; c != 0 {
		t.Errorf("exit %d after interrupt; stderr %s", c, h.errOut)
	}
}

func TestServerStop(t *testing.T) {
	f, url := newFakeManager(t)
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start a process to stop: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // reap it, or it lingers as a zombie
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	f.pid = cmd.Process.Pid

	h := newHarness(t)
	h.e.exitWait = 10 * time.Second
	if code := h.run(t, "server", "stop", "--addr", url); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
	// It says the apps keep running, and how to remove them.
	if want := fmt.Sprintf("Stopped the manager at %s (pid %d)\n", url, cmd.Process.Pid) +
		"The apps' containers keep running. To remove an app, run berth down in its directory " +
		"(or berth down -p NAME): on this machine's default address it starts the local cluster again to do so.\n"; h.out.String() != want {
		t.Errorf("stdout = %q, want %q", h.out, want)
	}
	select {
	case <-exited:
	default:
		t.Error("server stop returned before the process was gone")
	}

	h = newHarness(t)
	if code := h.run(t, "server", "stop", "--addr", "10.1.2.3:7700"); code != 1 ||
		!strings.Contains(h.errOut.String(), "only stops a local manager") {
		t.Errorf("remote stop: exit %d, stderr %q", code, h.errOut)
	}
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	waitWithin(t, 10*time.Second, cond)
}

// waitWithin waits for cond with a deadline of d. Tests that boot a real
// manager and agent use a longer one: on a 2-core machine shared with the
// Docker suites, the agent's engine calls can take many seconds.
func waitWithin(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRealEnvIsComplete guards against a collaborator added to env but not
// wired into the real one (a nil func would panic only in production).
func TestRealEnvIsComplete(t *testing.T) {
	v := reflect.ValueOf(newEnv(io.Discard, io.Discard)).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Func, reflect.Interface:
			if f.IsNil() {
				t.Errorf("newEnv leaves env.%s nil", v.Type().Field(i).Name)
			}
		}
	}
}

func TestTaskStateShowsProgress(t *testing.T) {
	tk := &types.Task{State: types.TaskStarting, DesiredState: types.DesiredRunning, Progress: "pulling image web: 1 of 3 layers, 2 MB of 9 MB"}
	if got, want := taskState(tk), "starting: pulling image web: 1 of 3 layers, 2 MB of 9 MB"; got != want {
		t.Errorf("state = %q, want %q", got, want)
	}
}
