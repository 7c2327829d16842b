package execdriver

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// TestControl: top lists the task's process, pause stops it (state T) and
// unpause continues it, kill sends the signal asked, and a task that has
// exited is refused with ErrNotRunning.
func TestControl(t *testing.T) {
	e := newEnv(t)
	d := e.driver()
	port, url := serving(t)
	cfg := e.task(port)
	st := e.start(d, cfg)
	id := cfg.Task.ID
	pid := strings.TrimPrefix(st.ContainerID, "pid:")

	stateOf := func() string {
		t.Helper()
		top, err := d.Top(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range top.Rows {
			if row[1] == pid {
				if !strings.Contains(row[4], e.app) {
					t.Fatalf("top row %v: CMD is not the task's command %s", row, e.app)
				}
				return row[3]
			}
		}
		t.Fatalf("top %v does not list the task's process %s", top.Rows, pid)
		return ""
	}
	waitState := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for got := stateOf(); !strings.HasPrefix(got, want); got = stateOf() {
			if time.Now().After(deadline) {
				t.Fatalf("process state %s, want %s", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if got := stateOf(); got == "T" {
		t.Fatalf("a fresh task is stopped (%s)", got)
	}
	if err := d.Pause(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	waitState("T")
	if err := d.Unpause(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	waitState("S")
	if body := get(t, url+"/"); body == "" {
		t.Fatal("the unpaused task does not answer")
	}

	events, _ := d.Events(e.ctx)
	if err := d.Kill(e.ctx, id, "TERM"); err != nil {
		t.Fatal(err)
	}
	ex := waitEvent(t, events, id, func(s *driver.Status) bool { return s.State == driver.StateExited })
	if ex.ExitCode != 0 { // the test app exits 0 on SIGTERM
		t.Fatalf("after kill -s TERM: exit %d, want 0", ex.ExitCode)
	}
	for name, call := range map[string]func() error{
		"kill":  func() error { return d.Kill(e.ctx, id, "") },
		"pause": func() error { return d.Pause(e.ctx, id) },
		"top":   func() error { _, err := d.Top(e.ctx, id); return err },
	} {
		if err := call(); !errors.Is(err, driver.ErrNotRunning) {
			t.Errorf("%s of an exited task: %v, want ErrNotRunning", name, err)
		}
	}
	if err := d.Kill(e.ctx, "nope", ""); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("kill of an unknown task: %v, want ErrNotFound", err)
	}

	// Default signal: SIGKILL, as docker kill.
	cfg2 := e.task(func(s *types.Service) { port(s) })
	e.start(d, cfg2)
	if err := d.Kill(e.ctx, cfg2.Task.ID, ""); err != nil {
		t.Fatal(err)
	}
	ex = waitEvent(t, events, cfg2.Task.ID, func(s *driver.Status) bool { return s.State == driver.StateExited })
	if ex.ExitCode != 128+9 {
		t.Fatalf("after kill: exit %d, want %s", ex.ExitCode, strconv.Itoa(137))
	}
}
