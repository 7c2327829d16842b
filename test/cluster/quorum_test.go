package cluster

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/cluster/harness"
)

// writeRefusalTimeout bounds how long a write may take to fail without
// quorum: it must fail with an error, not hang.
const writeRefusalTimeout = 60 * time.Second

// TestQuorumLossAndRecovery kills two of three managers: writes fail with
// a clear error while the tasks keep running. Then the survivor's data is
// turned into a one-manager cluster with --force-new-cluster: the apps are
// all there, nothing restarted, and a new manager can join it.
func TestQuorumLossAndRecovery(t *testing.T) {
	c := start(t, harness.Options{Agents: harness.Zones("a", "b")})
	// The survivor is the manager the agents joined through, the one
	// address they know.
	survivor := c.Managers[0]
	leader := c.Leader(t, 10*time.Second)
	file := writeApp(t, c, "q", service{name: "web", replicas: 2})
	c.MustRun(t, leader, "up", "-d", "-f", file)
	harness.WaitFor(t, time.Minute, "web running", c.ExpectRunning(leader, "q", "web", 2))
	before, err := c.Tasks(leader, "q")
	if err != nil {
		t.Fatal(err)
	}

	for _, m := range c.Managers[1:] {
		m.Kill(t)
	}
	// Once the survivor has stepped down, a write is refused before it
	// reaches the log. (A write racing the step-down may be appended,
	// reported failed, and still be committed by --force-new-cluster,
	// which commits the whole log: its outcome is unknown, as for any
	// write whose leader is lost.)
	harness.WaitFor(t, 30*time.Second, survivor.Name+" steps down without quorum", func() error {
		if survivor.Leads() {
			return fmt.Errorf("%s still leads", survivor.Name)
		}
		return nil
	})
	began := time.Now()
	r, err := c.RunWithin(t, writeRefusalTimeout, survivor, "-p", "q", "scale", "web=3")
	if err != nil {
		t.Fatalf("a write without quorum did not fail in time: %v", err)
	}
	if r.Code == 0 {
		t.Fatalf("a write without quorum succeeded: %s", r)
	}
	msg := strings.ToLower(r.Stderr)
	if !strings.Contains(msg, "quorum") && !strings.Contains(msg, "leader") {
		t.Errorf("the error of a write without quorum names neither quorum nor leader: %s", r)
	}
	t.Logf("write without quorum refused after %s: %s", time.Since(began).Round(time.Millisecond), lastLine(r.Stderr))
	if err := expectProcesses(c, 2)(); err != nil {
		t.Errorf("tasks stopped when quorum was lost: %v", err)
	}

	survivor.Stop(t, syscall.SIGTERM)
	survivor.SetArgs(append(survivor.Args(), "--force-new-cluster")...)
	survivor.Start(t)
	harness.WaitFor(t, time.Minute, "the survivor leads a one-manager cluster", c.ExpectVoters(t, survivor, 1))
	harness.WaitFor(t, 10*time.Second, "the app kept", c.ExpectApps(survivor, "q"))
	harness.WaitFor(t, time.Minute, "web running after recovery", all(
		c.ExpectRunning(survivor, "q", "web", 2),
		expectProcesses(c, 2),
	))
	after, err := c.Tasks(survivor, "q")
	if err != nil {
		t.Fatal(err)
	}
	assertSameTasks(t, before, after)

	joined := c.JoinManager(t, survivor, c.Token(t, survivor, "manager"))
	harness.WaitFor(t, time.Minute, joined.Name+" joins the recovered cluster", c.ExpectVoters(t, survivor, 2))
	c.MustRun(t, joined, "-p", "q", "scale", "web=3")
	harness.WaitFor(t, time.Minute, "the recovered cluster takes writes", all(
		c.ExpectRunning(survivor, "q", "web", 3),
		expectProcesses(c, 3),
	))
}
