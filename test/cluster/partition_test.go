package cluster

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/cluster/harness"
)

// TestPartitionedLeader cuts the leader off from the other managers (no
// process dies): the majority elects another leader, the old one steps
// down and refuses writes instead of accepting them alone, its reads say
// how stale they are, and once healed it follows and catches up: never two
// leaders, nothing lost.
func TestPartitionedLeader(t *testing.T) {
	c := start(t, harness.Options{Partitionable: true})
	old := c.Leader(t, 10*time.Second)
	if leader, _, err := staleness(otherThan(c.Live(), old)); err != nil || leader != old.Name {
		t.Errorf("a follower's read names leader %q (%v), want %s", leader, err, old.Name)
	}

	heal := c.Partition(t, old)
	next, took := c.WaitNewLeader(t, old, 3*electionBound)
	t.Logf("leader %s partitioned; %s leads after %s", old.Name, next.Name, took.Round(time.Millisecond))
	if took > electionBound {
		t.Errorf("a new leader took %s, want at most %s", took, electionBound)
	}
	harness.WaitFor(t, 10*time.Second, old.Name+" steps down", func() error {
		if old.Leads() {
			return fmt.Errorf("%s still leads alone", old.Name)
		}
		return nil
	})

	file := writeApp(t, c, "split", service{name: "web", replicas: 1})
	r, err := c.RunWithin(t, writeRefusalTimeout, old, "up", "-d", "-f", file)
	if err != nil {
		t.Fatalf("a write on the partitioned manager did not fail in time: %v", err)
	}
	if r.Code == 0 {
		t.Fatalf("the partitioned manager accepted a write: %s", r)
	}
	t.Logf("write on the partitioned manager refused: %s", lastLine(r.Stderr))
	harness.WaitFor(t, 10*time.Second, old.Name+"'s reads say they are stale", func() error {
		_, lag, err := staleness(old)
		if err != nil {
			return err
		}
		if lag < time.Second {
			return fmt.Errorf("%s says it heard from the leader %s ago", old.Name, lag)
		}
		return nil
	})

	c.MustRun(t, next, "up", "-d", "-f", file)
	heal()
	harness.WaitFor(t, 30*time.Second, old.Name+" catches up", c.ExpectApps(old, "split"))
	if leader := c.Leader(t, 30*time.Second); leader == old {
		t.Logf("%s leads again after the heal", old.Name)
	}
	for _, m := range c.Managers {
		harness.WaitFor(t, 10*time.Second, m.Name+" has the write", c.ExpectApps(m, "split"))
	}
}

// staleness reads m's app list and returns what its headers say: the
// leader's name and how long ago m heard from it. The header holds
// milliseconds (the design) or a Go duration.
func staleness(m *harness.Manager) (leader string, lastContact time.Duration, err error) {
	client := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, m.URL()+"/v1/apps", nil)
	req.Header.Set("Authorization", "Bearer "+m.Token())
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	resp.Body.Close()
	leader = resp.Header.Get("X-Berth-Leader")
	lc := resp.Header.Get("X-Berth-Last-Contact")
	if ms, err := strconv.ParseInt(lc, 10, 64); err == nil {
		return leader, time.Duration(ms) * time.Millisecond, nil
	}
	if d, err := time.ParseDuration(lc); err == nil {
		return leader, d, nil
	}
	return leader, 0, fmt.Errorf("%s's X-Berth-Last-Contact %q is neither milliseconds nor a duration", m.Name, lc)
}
