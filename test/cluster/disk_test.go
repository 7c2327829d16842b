package cluster

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// TestFullDiskLeader: the leader's data directory, a 128 MiB tmpfs, fills
// up. The leader marks itself unhealthy (status, members on the others),
// refuses reads with 503 and no fresh X-Berth-Last-Contact, and hands
// leadership away; the cluster goes on committing. Once the file is
// deleted it is healthy again, with no restart, and serves what was
// committed meanwhile.
func TestFullDiskLeader(t *testing.T) {
	c := harness.New(t, bins.berth, bins.app, harness.Options{})
	dir := c.SmallDisk(t, "m1", 128)
	m1 := c.Bootstrap(t)
	tok := c.Token(t, m1, "manager")
	m2, m3 := c.JoinManager(t, m1, tok), c.JoinManager(t, m1, tok)
	harness.WaitFor(t, 60*time.Second, "three voters", c.ExpectVoters(t, m1, 3))
	submit(t, m1, "before")

	free := harness.FillDisk(t, dir)
	filled := time.Now()
	harness.WaitFor(t, 20*time.Second, "m1 to report its full disk", func() error {
		if p := unhealthy(m1); p == "" {
			return fmt.Errorf("m1 reports no problem")
		}
		return nil
	})
	detected := time.Since(filled)
	var leader *harness.Manager
	harness.WaitFor(t, 30*time.Second, "m2 or m3 to lead", func() error {
		for _, m := range []*harness.Manager{m2, m3} {
			if m.Leads() {
				leader = m
				return nil
			}
		}
		return fmt.Errorf("neither m2 nor m3 leads")
	})
	handed := time.Since(filled)

	checkUnhealthyReads(t, m1)
	// The CLI either says why m1 refuses, or (a client that fails over on
	// 503) gets its answer from a healthy manager; never a stale one.
	if r := c.Run(t, m1, "ls"); r.Code != 0 && !strings.Contains(r.Stderr, "manager m1 cannot write its data directory") {
		t.Errorf("berth ls on m1 while its disk is full: want the refusal, got %s", r)
	}
	harness.WaitFor(t, 20*time.Second, "members on "+leader.Name+" to show m1 unhealthy", func() error {
		return memberHealth(t, c, leader, "m1", api.HealthUnhealthy)
	})
	table := c.MustRun(t, leader, "server", "members").Stdout
	if !strings.Contains(table, "unhealthy") || !strings.Contains(table, "m1 is unhealthy: ") {
		t.Errorf("server members on %s does not show m1 unhealthy:\n%s", leader.Name, table)
	}
	t.Logf("server members on %s with m1's disk full:\n%s", leader.Name, table)
	submit(t, leader, "during")

	free()
	freed := time.Now()
	harness.WaitFor(t, 30*time.Second, "m1 healthy again, serving what was committed meanwhile", func() error {
		if p := unhealthy(m1); p != "" {
			return fmt.Errorf("m1: %s", p)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := m1.Client().GetApp(ctx, "during")
		return err
	})
	recovered := time.Since(freed)
	harness.WaitFor(t, 20*time.Second, "members to show m1 ok", func() error {
		return memberHealth(t, c, leader, "m1", api.HealthOK)
	})
	submit(t, m1, "after")
	t.Logf("figures: full disk detected after %v, leadership handed away after %v, recovered %v after space returned",
		detected.Round(10*time.Millisecond), handed.Round(10*time.Millisecond), recovered.Round(10*time.Millisecond))
}

// TestFullDiskJoin: a manager whose data directory is full, or too small
// for the Raft log, is refused before it asks to join, with a sentence
// saying so, and the others list no ghost member.
func TestFullDiskJoin(t *testing.T) {
	c := harness.New(t, bins.berth, bins.app, harness.Options{})
	m1 := c.Bootstrap(t)
	tok := c.Token(t, m1, "manager")
	m2 := c.JoinManager(t, m1, tok)
	harness.WaitFor(t, 60*time.Second, "two voters", c.ExpectVoters(t, m1, 2))

	cases := []struct {
		name    string
		sizeMiB int
		fill    bool
		want    string
	}{
		{"m3", 16, true, "has 0.0 MiB free; a manager needs at least 80.0 MiB there"},
		{"m4", 48, false, "MiB free; a manager needs at least 80.0 MiB there"},
	}
	for _, tc := range cases {
		dir := c.SmallDisk(t, tc.name, tc.sizeMiB)
		if tc.fill {
			harness.FillDisk(t, dir)
		}
		m := c.StartJoiningManager(t, m1, tok)
		select {
		case <-m.Exited():
		case <-time.After(60 * time.Second):
			t.Fatalf("%s, on a %d MiB disk, still runs after 60s:\n%s", m.Name, tc.sizeMiB, m.Log(20))
		}
		log := m.Log(20)
		if !strings.Contains(log, "refusing to join the cluster at "+m1.ClusterAddr) || !strings.Contains(log, tc.want) ||
			!strings.Contains(log, "free some space there or choose another --data-dir") {
			t.Errorf("%s on a %d MiB disk (full: %v) ended with:\n%s\nwant the refusal %q", m.Name, tc.sizeMiB, tc.fill, log, tc.want)
		}
	}
	for _, m := range []*harness.Manager{m1, m2} {
		harness.WaitFor(t, 10*time.Second, "no ghost in members on "+m.Name, func() error {
			ms, err := c.Members(t, m)
			if err != nil {
				return err
			}
			if len(ms) != 2 {
				return fmt.Errorf("want m1 and m2 only, have %+v", ms)
			}
			return nil
		})
	}
}

// submit puts a small app through m and fails the test if it is refused.
func submit(t *testing.T, m *harness.Manager, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app := &types.App{Name: name, Services: []*types.Service{{Name: "web", Driver: types.DriverExec, Command: []string{"/bin/true"}, Replicas: 1}}}
	if _, err := m.Client().SubmitApp(ctx, app); err != nil {
		t.Fatalf("submit %s through %s: %v", name, m.Name, err)
	}
}

// unhealthy is what m's status says is wrong with its disk ("" if fine,
// or if it does not answer).
func unhealthy(m *harness.Manager) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := m.Client().Status(ctx)
	if err != nil {
		return ""
	}
	return st.Unhealthy
}

// checkUnhealthyReads: a read answers 503 saying why, status answers but
// carries no X-Berth-Last-Contact that would pass for fresh.
func checkUnhealthyReads(t *testing.T, m *harness.Manager) {
	t.Helper()
	for path, want := range map[string]int{api.PathApps: http.StatusServiceUnavailable, api.PathStatus: http.StatusOK} {
		req, err := http.NewRequest(http.MethodGet, m.URL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(api.HeaderAuthorization, "Bearer "+m.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get(server.HeaderLastContact) != "" || resp.Header.Get(server.HeaderUnhealthy) == "" {
			t.Errorf("GET %s on %s with its disk full: %s, last contact %q, unhealthy %q; want %d, no last contact, and the problem",
				path, m.Name, resp.Status, resp.Header.Get(server.HeaderLastContact), resp.Header.Get(server.HeaderUnhealthy), want)
		}
	}
}

// memberHealth checks that members on m shows name with health.
func memberHealth(t *testing.T, c *harness.Cluster, m *harness.Manager, name, health string) error {
	ms, err := c.Members(t, m)
	if err != nil {
		return err
	}
	for _, mb := range ms {
		if mb.Name == name {
			if mb.Health != health {
				return fmt.Errorf("%s has health %q (%s), want %q", name, mb.Health, mb.Problem, health)
			}
			return nil
		}
	}
	return fmt.Errorf("%s is not in members %+v", name, ms)
}
