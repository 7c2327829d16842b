package supervise

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type run struct {
	pidfile, log string
	cancel       context.CancelFunc
	done         chan error
}

func start(t *testing.T, o Options) *run {
	t.Helper()
	dir := t.TempDir()
	o.Pidfile, o.Log = filepath.Join(dir, "x.pid"), filepath.Join(dir, "x.log")
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{pidfile: o.Pidfile, log: o.Log, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, o) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func (r *run) child() int { return ReadPid(ChildPidfile(r.pidfile), "") }

func (r *run) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestRestartsAKilledCommandAndStops(t *testing.T) {
	r := start(t, Options{Args: []string{"sh", "-c", "echo started; exec sleep 60"}})
	// The child's pidfile is written when the process starts, before sh
	// has printed anything: wait for the output too, or the kill can come
	// first and the log holds one "started" (seen in CI).
	starts := func(n int) func() bool {
		return func() bool {
			b, _ := os.ReadFile(r.log)
			return r.child() != 0 && strings.Count(string(b), "started") >= n
		}
	}
	waitUntil(t, "the command", starts(1))
	if b, _ := os.ReadFile(r.pidfile); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pidfile %q, want the supervisor's pid %d", b, os.Getpid())
	}
	first := r.child()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a restarted command", func() bool { c := r.child(); return c != 0 && c != first })
	waitUntil(t, "the restarted command's output", starts(2))
	second := r.child()
	r.stop(t)
	if Alive(second) {
		t.Errorf("the command (pid %d) runs on after the supervisor stopped", second)
	}
	for _, f := range []string{r.pidfile, ChildPidfile(r.pidfile)} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", f, err)
		}
	}
	b, _ := os.ReadFile(r.log)
	if strings.Count(string(b), "started") != 2 || !strings.Contains(string(b), "restarting") {
		t.Errorf("log:\n%s", b)
	}
}

// A command that dies at once is restarted with a growing backoff, not in
// a busy loop.
func TestBackoff(t *testing.T) {
	began := time.Now()
	r := start(t, Options{Args: []string{"sh", "-c", "echo started; exit 3"}})
	waitUntil(t, "three starts", func() bool {
		b, _ := os.ReadFile(r.log)
		return strings.Count(string(b), "started") >= 3
	})
	// Restarts after 0.2 s, then 0.4 s: the third start is 0.6 s in at
	// the earliest.
	if took := time.Since(began); took < 3*minBackoff {
		t.Errorf("three starts within %s: no backoff", took)
	}
	r.stop(t)
}

// A command that ignores SIGTERM is killed after StopTimeout.
func TestStopKillsAStubbornCommand(t *testing.T) {
	r := start(t, Options{Args: []string{"sh", "-c", "trap '' TERM; echo started; exec sleep 60"}, StopTimeout: 300 * time.Millisecond})
	waitUntil(t, "the command", func() bool {
		b, _ := os.ReadFile(r.log)
		return r.child() != 0 && strings.Contains(string(b), "started")
	})
	child := r.child()
	r.stop(t)
	if Alive(child) {
		t.Errorf("the command (pid %d) survived Stop", child)
	}
}

func TestNoCommand(t *testing.T) {
	if err := Run(context.Background(), Options{Pidfile: filepath.Join(t.TempDir(), "p"), Log: os.DevNull}); err == nil {
		t.Fatal("Run with no command: no error")
	}
}

// The log stays bounded: past MaxLog it moves to .1 and starts again.
func TestLogRotates(t *testing.T) {
	r := start(t, Options{Args: []string{"sh", "-c", "i=0; while [ $i -lt 200 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done; exec sleep 60"}, MaxLog: 2000})
	waitUntil(t, "a rotated log", func() bool { _, err := os.Stat(r.log + ".1"); return err == nil })
	waitUntil(t, "all the output", func() bool {
		a, _ := os.ReadFile(r.log)
		b, _ := os.ReadFile(r.log + ".1")
		return len(a) > 0 && len(b) > 0 && strings.Count(string(a), "\n")+strings.Count(string(b), "\n") >= 40
	})
	r.stop(t)
	for _, f := range []string{r.log, r.log + ".1"} {
		if st, err := os.Stat(f); err != nil || st.Size() > 2000 {
			t.Errorf("%s: %v, size %d, want at most 2000", f, err, st.Size())
		}
	}
}

// A child's pidfile a killed command left is cleared before the next start.
func TestClearPidfiles(t *testing.T) {
	stale := filepath.Join(t.TempDir(), "containerd.pid")
	if err := os.WriteFile(stale, []byte("999999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, Options{Args: []string{"sh", "-c", "test -e " + stale + " && echo STALE || echo CLEAN; exec sleep 60"},
		ClearPidfiles: []string{stale}})
	waitUntil(t, "the command's word", func() bool {
		b, _ := os.ReadFile(r.log)
		return strings.Contains(string(b), "STALE") || strings.Contains(string(b), "CLEAN")
	})
	r.stop(t)
	if b, _ := os.ReadFile(r.log); !strings.Contains(string(b), "CLEAN") {
		t.Errorf("the command found the stale pidfile:\n%s", b)
	}
}
