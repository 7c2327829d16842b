package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// electionBound is how soon after the leader dies another must lead (on
// loopback).
const electionBound = 5 * time.Second

// TestLeaderFailover kills -9 the leader right after a deploy was
// acknowledged: another manager leads within electionBound, the deploy
// converges, the acknowledged writes are all there, no node is marked down,
// and the tasks that ran before the kill are the same tasks after it.
func TestLeaderFailover(t *testing.T) {
	c := start(t, harness.Options{Agents: harness.Zones("a", "b", "c")})
	leader := c.Leader(t, 10*time.Second)
	follower := otherThan(c.Live(), leader)

	steady := writeApp(t, c, "steady", service{name: "web", replicas: 3})
	c.MustRun(t, leader, "up", "-d", "-f", steady)
	harness.WaitFor(t, time.Minute, "steady web running", c.ExpectRunning(leader, "steady", "web", 3))
	before, err := c.Tasks(leader, "steady")
	if err != nil {
		t.Fatal(err)
	}

	// The deploy goes through a follower (forwarded to the leader); once
	// `up -d` returns, the write is acknowledged and must survive.
	rollout := writeApp(t, c, "rollout", service{name: "api", replicas: 4}, service{name: "worker", replicas: 2})
	c.MustRun(t, follower, "up", "-d", "-f", rollout)
	leader.Kill(t)
	next, took := c.WaitNewLeader(t, leader, 2*electionBound)
	t.Logf("leader %s killed; %s leads after %s", leader.Name, next.Name, took.Round(time.Millisecond))
	if took > electionBound {
		t.Errorf("a new leader took %s, want at most %s", took, electionBound)
	}
	agreed := c.Leader(t, 10*time.Second)
	if agreed != next {
		t.Logf("leadership moved on again: %s, then %s", next.Name, agreed.Name)
	}

	noNodeDown := watchNodesUp(t, c, agreed)
	harness.WaitFor(t, time.Minute, "rollout api converges", all(noNodeDown, c.ExpectRunning(agreed, "rollout", "api", 4)))
	harness.WaitFor(t, time.Minute, "rollout worker converges", all(noNodeDown, c.ExpectRunning(agreed, "rollout", "worker", 2)))
	harness.WaitFor(t, 10*time.Second, "steady web still running", all(noNodeDown, c.ExpectRunning(agreed, "steady", "web", 3)))

	after, err := c.Tasks(agreed, "steady")
	if err != nil {
		t.Fatal(err)
	}
	assertSameTasks(t, before, after)
	for _, m := range c.Live() {
		harness.WaitFor(t, 10*time.Second, m.Name+" has the rollout app", func() error {
			_, err := c.Tasks(m, "rollout")
			return err
		})
	}
}

// otherThan returns the first manager of ms that is not m.
func otherThan(ms []*harness.Manager, m *harness.Manager) *harness.Manager {
	for _, o := range ms {
		if o != m {
			return o
		}
	}
	return nil
}

// watchNodesUp is a condition that fails the test for good once any node is
// marked down: a failover must not cost a node.
func watchNodesUp(t *testing.T, c *harness.Cluster, m *harness.Manager) func() error {
	return func() error {
		nodes, err := c.Nodes(m)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.Status != types.NodeReady {
				t.Fatalf("node %s is %s after the leader failed over: %s", n.Name, n.Status, harness.DescribeNodes(nodes))
			}
		}
		return nil
	}
}

// all is a condition that holds when every one of conds does.
func all(conds ...func() error) func() error {
	return func() error {
		for _, cond := range conds {
			if err := cond(); err != nil {
				return err
			}
		}
		return nil
	}
}

// assertSameTasks checks that every task running in before still runs in
// after, with the same ID, node, attempt and process: nothing restarted.
func assertSameTasks(t *testing.T, before, after []*types.Task) {
	t.Helper()
	byID := map[string]*types.Task{}
	for _, a := range after {
		byID[a.ID] = a
	}
	for _, b := range before {
		if b.State != types.TaskRunning {
			continue
		}
		a, ok := byID[b.ID]
		switch {
		case !ok:
			t.Errorf("task %s (%s) is gone: %s", b.Name(), b.ID, harness.Describe(after))
		case a.State != types.TaskRunning || a.DesiredState != types.DesiredRunning:
			t.Errorf("task %s is %s/%s, was running", a.Name(), a.State, a.DesiredState)
		case a.Attempt != b.Attempt || a.NodeID != b.NodeID || a.ContainerID != b.ContainerID:
			t.Errorf("task %s changed: %s", a.Name(), diffTask(b, a))
		}
	}
}

func diffTask(b, a *types.Task) string {
	return fmt.Sprintf("attempt %d->%d, node %s->%s, process %s->%s",
		b.Attempt, a.Attempt, b.NodeID, a.NodeID, b.ContainerID, a.ContainerID)
}
