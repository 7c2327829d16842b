package cluster

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// TestRemovedAgentStaysOut: `node rm --force` revokes the agent's
// certificate. After a token rotation too, the running agent cannot
// register again (its handshakes are refused, its log says why and what to
// do) and its node does not come back; the issue saw it back within 8 s.
func TestRemovedAgentStaysOut(t *testing.T) {
	c := start(t, harness.Options{Managers: 1, Agents: harness.Zones("a", "b")})
	leader := c.Leader(t, 10*time.Second)
	harness.WaitFor(t, 30*time.Second, "both agents ready", c.ExpectNodesReady(leader, 2))
	victim := c.Agents[0]
	// Labels came with the join, and the node reports none of its own.
	if n := c.NodeByName(t, leader, victim.Name); !maps.Equal(n.Labels, victim.Labels) || n.Role != types.RoleWorker {
		t.Errorf("node %s: role %s labels %v, want worker %v", n.Name, n.Role, n.Labels, victim.Labels)
	}
	removedAt := time.Now()
	c.MustRun(t, leader, "node", "rm", "--force", victim.Name)
	c.MustRun(t, leader, "token", "worker", "--rotate")
	// Watch twice the time the agent took to come back.
	for time.Since(removedAt) < 16*time.Second {
		nodes, err := c.Nodes(leader)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.Name == victim.Name {
				t.Fatalf("%s is back %s after node rm: %s", victim.Name, time.Since(removedAt).Round(100*time.Millisecond), harness.DescribeNodes(nodes))
			}
		}
		time.Sleep(250 * time.Millisecond) // a poll interval while watching for an absence
	}
	harness.WaitFor(t, 30*time.Second, victim.Name+" logs that it was removed", func() error {
		if log := victim.Log(40); !strings.Contains(log, "removed from the cluster") {
			return fmt.Errorf("%s's log does not say it was removed:\n%s", victim.Name, log)
		}
		return nil
	})
	t.Logf("%s stayed out for %s and says why", victim.Name, time.Since(removedAt).Round(100*time.Millisecond))
	if !victim.Running() {
		t.Errorf("%s exited; it should keep running and saying why it is refused", victim.Name)
	}
}

// TestCertificateRenewal: with certificates valid 20 s, agents and managers
// renew theirs before they end, and the cluster works on past the first
// ones' expiry with no task restarted: the same tasks run, writes through
// a follower are forwarded, and a manager restarted then rejoins Raft with
// the renewed certificate it saved.
func TestCertificateRenewal(t *testing.T) {
	const ttl = 20 * time.Second
	c := start(t, harness.Options{ServerArgs: []string{"--cert-ttl", ttl.String()}, Agents: harness.Zones("a", "b")})
	leader := c.Leader(t, 10*time.Second)
	file := writeApp(t, c, "renew", service{name: "web", replicas: 2})
	c.MustRun(t, leader, "up", "-d", "-f", file)
	harness.WaitFor(t, time.Minute, "web running", c.ExpectRunning(leader, "renew", "web", 2))
	before, err := c.Tasks(leader, "renew")
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Agents[0].Identity()
	if err != nil {
		t.Fatal(err)
	}
	expired := first.Cert.Leaf.NotAfter
	harness.WaitFor(t, ttl+time.Minute, "past the first certificates' expiry", func() error {
		if time.Now().Before(expired.Add(3 * time.Second)) {
			return fmt.Errorf("the first agent certificate ends at %s", expired.Format(time.TimeOnly))
		}
		return nil
	})
	for _, a := range c.Agents {
		id, err := a.Identity()
		if err != nil || !id.Cert.Leaf.NotAfter.After(expired) {
			t.Errorf("%s's saved certificate: %v, until %v; want renewed past %s", a.Name, err, id.Cert.Leaf.NotAfter, expired)
		}
	}
	var renewals []string
	for _, a := range c.Agents {
		renewals = append(renewals, fmt.Sprintf("%s %d", a.Name, strings.Count(a.Log(1000), "renewed this node's certificate")))
	}
	for _, m := range c.Managers {
		n := strings.Count(m.Log(1000), "renewed this manager's certificate")
		if n == 0 {
			t.Errorf("%s did not renew its certificate", m.Name)
		}
		renewals = append(renewals, fmt.Sprintf("%s %d", m.Name, n))
	}
	t.Logf("renewals within %s of start: %s", time.Since(expired.Add(-ttl)).Round(time.Second), strings.Join(renewals, ", "))
	harness.WaitFor(t, 30*time.Second, "nodes ready", c.ExpectNodesReady(leader, 2))
	after, err := c.Tasks(leader, "renew")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := runningIDs(after), runningIDs(before); a != b {
		t.Errorf("running tasks changed across renewal: before %s, after %s", b, a)
	} else {
		t.Logf("the same %d tasks ran throughout: none restarted", len(harness.Running(after, "web")))
	}
	var follower *harness.Manager
	for _, m := range c.Managers {
		if m != leader {
			follower = m
		}
	}
	// A write on a follower goes to the leader over the renewed
	// manager certificates.
	c.MustRun(t, follower, "-p", "renew", "scale", "web=3")
	harness.WaitFor(t, time.Minute, "web scaled to 3", c.ExpectRunning(leader, "renew", "web", 3))
	// A restart makes every Raft connection of the manager anew.
	follower.Kill(t)
	follower.Start(t)
	harness.WaitFor(t, time.Minute, follower.Name+" has the scale again", c.ExpectRunning(follower, "renew", "web", 3))
}

func runningIDs(tasks []*types.Task) string {
	var ids []string
	for _, tk := range harness.Running(tasks, "web") {
		ids = append(ids, tk.ID)
	}
	slices.Sort(ids)
	return strings.Join(ids, ",")
}
