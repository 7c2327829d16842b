package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	h "github.com/berth-dev/berth/test/e2e/harness"
)

// TestScaleFollowUpPs drives scale with the exec driver the way a newcomer
// did: logs -f keeps following through a scale-up and picks up the new
// replicas (it warned "task ... is not on node" and exited 1); up after
// scale says what moved ("3 -> 1 replica", it said unchanged); plain ps
// shows the current tasks, the scaled-down ones only under -a, without
// health.
func TestScaleFollowUpPs(t *testing.T) {
	const project = "e2e-scale"
	bin := execAppBinary(t) // first: its cleanup runs after the server stops
	c := h.StartCluster(t, berthBin)
	dir := t.TempDir()
	file := h.WriteFile(t, dir, "compose.yaml", `
services:
  worker:
    x-berth-driver: exec
    command: ["`+bin+`"]
    environment:
      PORT: "0"
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
`)
	c.MustRun(t, dir, "up", "-p", project, "-f", file)
	h.WaitFor(t, time.Minute, "one worker", c.ExpectRunning(t, project, "worker", 1))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := exec.CommandContext(ctx, berthBin, "--addr", c.Addr, "-p", project, "logs", "-f", "worker")
	logs.Dir, logs.Env = dir, h.IsolatedEnv(c.DataDir)
	var out, errOut lockedBuffer
	logs.Stdout, logs.Stderr = &out, &errOut
	if err := logs.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- logs.Wait() }()

	c.MustRun(t, dir, "-p", project, "scale", "worker=3")
	h.WaitFor(t, time.Minute, "three workers", c.ExpectRunning(t, project, "worker", 3))
	h.WaitFor(t, 30*time.Second, "logs -f following the new replicas", func() error {
		for _, r := range []string{"worker-2", "worker-3"} {
			if !strings.Contains(out.String(), r+"  | ") {
				return fmt.Errorf("no line of %s yet:\n%s\nstderr:\n%s", r, out.String(), errOut.String())
			}
		}
		return nil
	})
	select {
	case err := <-exited:
		t.Fatalf("logs -f exited during the scale-up (%v):\n%s", err, errOut.String())
	default:
	}
	if strings.Contains(errOut.String(), "is not on node") || strings.Contains(errOut.String(), "cannot read") {
		t.Errorf("logs -f warned during the scale-up:\n%s", errOut.String())
	}
	cancel()

	up := c.MustRun(t, dir, "up", "-p", project, "-f", file)
	if !strings.Contains(up.Stdout, "worker  3 -> 1 replica\n") {
		t.Errorf("up after scale does not say what changed:\n%s", up)
	}
	h.WaitFor(t, time.Minute, "back to one worker", c.ExpectRunning(t, project, "worker", 1))
	h.WaitFor(t, 30*time.Second, "ps showing one worker", func() error {
		ps := c.MustRun(t, dir, "-p", project, "ps")
		if rows := strings.Count(ps.Stdout, "\nworker "); rows != 1 {
			return fmt.Errorf("ps shows %d worker rows, want 1:\n%s", rows, ps.Stdout)
		}
		return nil
	})
	all := c.MustRun(t, dir, "-p", project, "ps", "-a")
	shutdown := 0
	for _, line := range strings.Split(all.Stdout, "\n") {
		if !strings.Contains(line, " shutdown ") {
			continue
		}
		shutdown++
		if strings.Contains(line, "healthy") {
			t.Errorf("a stopped task shows health: %q", line)
		}
	}
	if shutdown < 2 {
		t.Errorf("ps -a shows %d scaled-down tasks, want 2:\n%s", shutdown, all.Stdout)
	}
	c.MustRun(t, dir, "-p", project, "down", "--wait-timeout", "2m")
}

// lockedBuffer is a bytes.Buffer safe for a process's writes and the
// test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
