package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// TestLeaderWithUnreplicatedTailRestartsTwice is raft-wal#31: a leader
// killed with entries no follower has loses them on its restart ("clearing
// log suffix"), and with raft-wal v0.4.0 it then panicked on the start after
// that ("sealed segment has no index block"): a manager lost for good. Here
// the followers are down while writes reach the leader, so its log's tail
// is its own; it is killed -9, the followers elect a new leader, and it is
// restarted, killed -9 and restarted again: it must start and rejoin each
// time.
func TestLeaderWithUnreplicatedTailRestartsTwice(t *testing.T) {
	c := start(t, harness.Options{})
	old := c.Leader(t, 10*time.Second)
	file := writeApp(t, c, "tail", service{name: "web", replicas: 1})
	c.MustRun(t, old, "up", "-d", "-f", file)

	writesOnlyTheLeaderHolds(t, c, old)
	old.Kill(t)
	for _, m := range c.Managers {
		if m != old {
			m.Start(t)
		}
	}
	next, took := c.WaitNewLeader(t, old, 30*time.Second)
	t.Logf("%s killed with an unreplicated tail; %s leads after %s", old.Name, next.Name, took.Round(time.Millisecond))

	began := time.Now()
	old.Start(t)
	harness.WaitFor(t, time.Minute, old.Name+" drops the tail it alone held", func() error {
		if !old.Running() {
			t.Fatalf("%s exited:\n%s", old.Name, old.Log(30))
		}
		if !strings.Contains(readLog(t, old), "clearing log suffix") {
			return errors.New("no \"clearing log suffix\" in its log yet")
		}
		return nil
	})
	rejoin(t, c, old)
	t.Logf("%s restarted, dropped its tail (%s) and caught up after %s", old.Name,
		suffixCleared(readLog(t, old)), time.Since(began).Round(time.Millisecond))

	old.Kill(t)
	began = time.Now()
	old.Start(t)
	rejoin(t, c, old)
	t.Logf("%s restarted again and caught up after %s", old.Name, time.Since(began).Round(time.Millisecond))
	if strings.Contains(readLog(t, old), "panic") {
		t.Errorf("%s panicked:\n%s", old.Name, old.Log(40))
	}
}

// suffixCleared picks raft's account of the entries it dropped out of a
// manager's log.
func suffixCleared(log string) string {
	for _, line := range strings.Split(log, "\n") {
		if i := strings.Index(line, "clearing log suffix"); i >= 0 {
			return strings.ReplaceAll(line[i:], `"`, "")
		}
	}
	return ""
}

// writesOnlyTheLeaderHolds kills -9 every manager but leader, then sends
// it writes until it steps down for want of a quorum: the writes it
// appended meanwhile are in its log only. (Frozen followers would not do:
// the entries wait in their sockets and reach them when they wake.) The
// followers stay down.
func writesOnlyTheLeaderHolds(t *testing.T, c *harness.Cluster, leader *harness.Manager) {
	t.Helper()
	for _, m := range c.Managers {
		if m != leader {
			m.Kill(t)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 2 + i; ; n += 4 {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				// Each fails (the leader cannot commit); what counts is
				// that the leader appended it.
				_ = leader.Client().Scale(ctx, "tail", "web", n)
				cancel()
			}
		}()
	}
	harness.WaitFor(t, 30*time.Second, leader.Name+" steps down without its followers", func() error {
		if leader.Leads() {
			return fmt.Errorf("%s still leads", leader.Name)
		}
		return nil
	})
	close(stop)
	wg.Wait()
}

// rejoin waits until m, just started, answers, follows the leader the
// others agree on, and has applied what that leader has.
func rejoin(t *testing.T, c *harness.Cluster, m *harness.Manager) {
	t.Helper()
	harness.WaitFor(t, 2*time.Minute, m.Name+" rejoins and catches up", func() error {
		if !m.Running() {
			t.Fatalf("%s exited:\n%s", m.Name, m.Log(30))
		}
		leader, err := agreedLeaderIndex(c)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := m.Client().Status(ctx)
		switch {
		case err != nil:
			return err
		case st.LeaderID == "":
			return fmt.Errorf("%s knows no leader", m.Name)
		case st.Index < leader:
			return fmt.Errorf("%s has applied up to %d, the leader %d", m.Name, st.Index, leader)
		}
		return c.ExpectVoters(t, m, 3)()
	})
}

// agreedLeaderIndex is the applied index of the manager that leads.
func agreedLeaderIndex(c *harness.Cluster) (uint64, error) {
	for _, m := range c.Live() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := m.Client().Status(ctx)
		cancel()
		if err == nil && st.Leader {
			return st.Index, nil
		}
	}
	return 0, errors.New("no manager leads")
}

// TestCorruptFollowerHalts flips one byte of a committed entry in a stopped
// follower's WAL, changing web's replicas from 3 to 7 in its copy of a scale
// command. Restarted, the follower must never serve the changed value: it
// stops at that entry and answers 503 with the entry's index and what to
// do, says the same in its log, and leaves Raft, while the other two
// managers go on taking writes.
func TestCorruptFollowerHalts(t *testing.T) {
	c := start(t, harness.Options{})
	leader := c.Leader(t, 10*time.Second)
	bad := otherThan(c.Live(), leader)
	good := otherThanAll(c.Live(), leader, bad)

	c.MustRun(t, leader, "up", "-d", "-f", writeApp(t, c, "probe", service{name: "web", replicas: 1}))
	before := appIndex(t, leader, "probe")
	c.MustRun(t, leader, "-p", "probe", "scale", "-d", "web=3")
	// The scale's entry lies after before and at or before the app's
	// index now: the controller's verdict on web may change the app again
	// in an entry of its own.
	index := appIndex(t, leader, "probe")
	// Later entries, so the scale is not in the last batch of the
	// follower's log (raft-wal checks only the last one on opening).
	filler := writeApp(t, c, "filler", service{name: "web", replicas: 1})
	c.MustRun(t, leader, "up", "-d", "-f", filler)
	for _, n := range []string{"web=2", "web=3"} {
		c.MustRun(t, leader, "-p", "filler", "scale", "-d", n)
	}
	last := appIndex(t, leader, "filler")
	harness.WaitFor(t, 30*time.Second, bad.Name+" has applied the writes", func() error {
		if got := appIndex(t, bad, "filler"); got < last {
			return fmt.Errorf("%s has filler at index %d, want %d", bad.Name, got, last)
		}
		return nil
	})

	bad.Stop(t, syscall.SIGTERM)
	flipInWAL(t, bad, []byte(`"app":"probe","service":"web","replicas":3,`), []byte(`"app":"probe","service":"web","replicas":7,`))
	began := time.Now()
	bad.Start(t)

	var msg string
	harness.WaitFor(t, time.Minute, bad.Name+" refuses to serve", func() error {
		app, err := getApp(bad, "probe")
		var ae *api.Error
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable && strings.Contains(ae.Message, "wipe"):
			msg = ae.Message
			return nil
		case err != nil:
			return err
		case app.Services[0].Replicas == 7:
			t.Fatalf("%s serves the corrupt entry's data: web has 7 replicas", bad.Name)
		}
		return fmt.Errorf("%s still serves (web has %d replicas)", bad.Name, app.Services[0].Replicas)
	})
	t.Logf("%s halted %s after its restart: %s", bad.Name, time.Since(began).Round(time.Millisecond), msg)
	var halted uint64
	_, err := fmt.Sscanf(msg[max(strings.Index(msg, "entry "), 0):], "entry %d ", &halted)
	if err != nil || halted <= before || halted > index {
		t.Errorf("the 503 answer names entry %d (%v), want the scale's, in %d..%d: %s", halted, err, before+1, index, msg)
	}
	for _, want := range []string{bad.DataDir, "join"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the 503 answer does not say %q: %s", want, msg)
		}
	}
	if !strings.Contains(readLog(t, bad), msg) {
		t.Errorf("the log of %s does not say %q:\n%s", bad.Name, msg, bad.Log(20))
	}

	// The two others still make a quorum, and the halted one takes no part.
	c.MustRun(t, good, "-p", "filler", "scale", "-d", "web=4")
	after := appIndex(t, leader, "filler")
	for _, m := range []*harness.Manager{leader, good} {
		harness.WaitFor(t, 30*time.Second, m.Name+" applies a write after the halt", func() error {
			if got := appIndex(t, m, "filler"); got < after {
				return fmt.Errorf("%s has filler at index %d, want %d", m.Name, got, after)
			}
			return nil
		})
	}
	if _, err := getApp(bad, "filler"); !isUnavailable(err) {
		t.Errorf("%s answers again after the halt: %v", bad.Name, err)
	}
	if !bad.Running() {
		t.Errorf("%s exited; it should stay up to answer why it stopped:\n%s", bad.Name, bad.Log(20))
	}
}

// flipInWAL replaces the one occurrence of from with to (of the same
// length) in m's raft-wal segment files; m must be stopped.
func flipInWAL(t *testing.T, m *harness.Manager, from, to []byte) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(m.DataDir, "raft", "wal", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no WAL segment in %s: %v", m.DataDir, err)
	}
	found := 0
	for _, seg := range segs {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		n := bytes.Count(b, from)
		if n == 0 {
			continue
		}
		found += n
		if err := os.WriteFile(seg, bytes.ReplaceAll(b, from, to), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if found != 1 {
		t.Fatalf("%q is %d times in the WAL of %s, want once", from, found, m.Name)
	}
}

func getApp(m *harness.Manager, name string) (*types.App, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// No retries: a halted manager's 503 is what some callers look for,
	// and a client retries 503s (on another manager) until its deadline.
	c := api.NewClient(m.URL(), api.WithToken(m.Token()), api.WithTimeouts(5*time.Second, 0))
	return c.GetApp(ctx, name)
}

// appIndex is the Raft index of the last change of app name on m.
func appIndex(t *testing.T, m *harness.Manager, name string) uint64 {
	t.Helper()
	app, err := getApp(m, name)
	if err != nil {
		t.Fatalf("get app %s on %s: %v", name, m.Name, err)
	}
	return app.ModifyIndex
}

func isUnavailable(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable
}

// otherThanAll returns the first manager of ms that is none of not.
func otherThanAll(ms []*harness.Manager, not ...*harness.Manager) *harness.Manager {
	for _, m := range ms {
		if !slices.Contains(not, m) {
			return m
		}
	}
	return nil
}

func readLog(t *testing.T, m *harness.Manager) string {
	t.Helper()
	b, err := os.ReadFile(m.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
