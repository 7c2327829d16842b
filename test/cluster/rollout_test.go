package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// rolloutApp writes the test app's Compose file: web, 4 exec replicas
// rolled one at a time with a delay (long enough to kill the leader
// between two steps), rolled back on failure. port "bad" makes every
// replica of the version exit 1 at once.
func rolloutApp(t *testing.T, c *harness.Cluster, message, port string) string {
	t.Helper()
	yaml := fmt.Sprintf(`name: roll
services:
  web:
    x-berth-driver: exec
    image: berth-test/unused-by-exec
    command: [%q]
    stop_grace_period: 2s
    x-berth-drain-delay: 100ms
    environment:
      PORT: %q
      MESSAGE: %s
    deploy:
      replicas: 4
      update_config: {parallelism: 1, delay: 1s, monitor: 4s, failure_action: rollback}
      rollback_config: {parallelism: 2}
`, c.AppBin, port, message)
	dir := filepath.Join(c.Dir(), "roll")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// deploymentOf reads the deployment of version v of roll/web from m.
func deploymentOf(m *harness.Manager, v uint64) (*api.Deployment, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ds, _, err := m.Client().ListDeployments(ctx, api.DeploymentQuery{App: "roll", Service: "web"})
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.ToVersion == v {
			return d, nil
		}
	}
	return nil, fmt.Errorf("no deployment of version %d yet", v)
}

// TestRollingUpdateAcrossLeaderKill rolls a 4-replica exec service to a new
// version one replica at a time, kills -9 the leader between two steps,
// and sees the next leader carry the rollout on from the record to its end,
// with never fewer than 3 replicas serving. A version whose replicas crash
// then stops at max_failure_ratio, `up` says so and fails, and the
// previous version is rolled back by itself.
func TestRollingUpdateAcrossLeaderKill(t *testing.T) {
	c := start(t, harness.Options{Agents: harness.Zones("a", "b")})
	leader := c.Leader(t, 10*time.Second)
	c.MustRun(t, leader, "up", "-f", rolloutApp(t, c, "v1", "0"))

	c.MustRun(t, leader, "up", "-d", "-f", rolloutApp(t, c, "v2", "0"))
	minServing := 4
	serving := func(m *harness.Manager) error {
		tasks, err := c.Tasks(m, "roll")
		if err != nil {
			return err
		}
		n := 0
		for _, tk := range tasks {
			if tk.State == types.TaskRunning && tk.DesiredState == types.DesiredRunning {
				n++
			}
		}
		minServing = min(minServing, n)
		return nil
	}
	harness.WaitFor(t, time.Minute, "the rollout to version 2 half way", func() error {
		if err := serving(leader); err != nil {
			return err
		}
		d, err := deploymentOf(leader, 2)
		if err != nil || d.Healthy < 2 {
			return fmt.Errorf("deployment: %+v, %v", d, err)
		}
		return nil
	})
	before := eventsOf(t, leader, 0)
	_, next, _ := c.KillLeader(t, electionBound+10*time.Second)
	start := time.Now()
	harness.WaitFor(t, 2*time.Minute, "the next leader finishes the rollout", func() error {
		if err := serving(next); err != nil {
			return err
		}
		d, err := deploymentOf(next, 2)
		if err != nil || d.State != api.DeploymentSucceeded {
			return fmt.Errorf("deployment: %+v, %v", d, err)
		}
		return nil
	})
	finished := time.Since(start)
	// The next leader has every event the old one had, at the same
	// indexes, and goes on from there: a client resumes without a gap.
	after := eventsOf(t, next, 0)
	have := map[api.Event]bool{}
	for _, e := range after.Events {
		have[e] = true
	}
	for _, e := range before.Events {
		if !have[e] {
			t.Errorf("the next leader lacks event %+v", e)
		}
	}
	if resumed := eventsOf(t, next, before.Index); resumed.Gap != nil || !hasEvent(resumed.Events, "roll/web/2", api.DeploymentSucceeded) {
		t.Errorf("resumed after index %d on the next leader: gap %+v, %d events without the deployment's success", before.Index, resumed.Gap, len(resumed.Events))
	}
	if minServing < 3 {
		t.Errorf("only %d replicas served at one point; stop-first with parallelism 1 keeps 3", minServing)
	}
	tasks, err := c.Tasks(next, "roll")
	if err != nil {
		t.Fatal(err)
	}
	if live := harness.Running(tasks, "web"); len(live) != 4 {
		t.Fatalf("after the rollout: %s", harness.Describe(tasks))
	}
	for _, tk := range harness.Running(tasks, "web") {
		if tk.ServiceVersion != 2 {
			t.Errorf("task %s runs version %d", tk.Name(), tk.ServiceVersion)
		}
	}

	// A version that crashes: up fails with the reason, the cluster rolls back.
	r := c.Run(t, next, "up", "-f", rolloutApp(t, c, "v3", "bad"))
	if r.Code == 0 || !strings.Contains(r.Stderr, "its deployment to version 3 was rolled back (failure_ratio)") {
		t.Fatalf("up of a crashing version: %s", r)
	}
	harness.WaitFor(t, 2*time.Minute, "the rollback to the spec of version 2", func() error {
		d, err := deploymentOf(next, 4)
		if err != nil || !d.Rollback || d.State != api.DeploymentSucceeded {
			return fmt.Errorf("deployment: %+v, %v", d, err)
		}
		return c.ExpectRunning(next, "roll", "web", 4)()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	app, err := next.Client().GetApp(ctx, "roll")
	if err != nil {
		t.Fatal(err)
	}
	if env := app.Service("web").Env; env["MESSAGE"] != "v2" || env["PORT"] != "0" {
		t.Errorf("rolled back to env %v, want version 2's", env)
	}
	// The CLI shows it; a dry run names the field it would change, and
	// changes nothing.
	v1 := rolloutApp(t, c, "v1", "0")
	if out := c.MustRun(t, next, "deployments", "-f", v1).Stdout; !strings.Contains(out, "2 -> 3") || !strings.Contains(out, "rolled_back") ||
		!strings.Contains(out, "3 -> 4 (rollback)") {
		t.Errorf("berth deployments:\n%s", out)
	}
	if out := c.MustRun(t, next, "inspect", "web", "-f", v1).Stdout; !strings.Contains(out, "deployment:  3 -> 4 (rollback) succeeded, 4/4 updated, 4 up") {
		t.Errorf("berth inspect web:\n%s", out)
	}
	if out := c.MustRun(t, next, "up", "--dry-run", "-f", v1).Stdout; !strings.Contains(out, "update (version 4 -> 5): env; starts 4 tasks, stops 4") {
		t.Errorf("berth up --dry-run:\n%s", out)
	}
	if d, err := deploymentOf(next, 5); err == nil {
		t.Errorf("the dry run made a deployment: %+v", d)
	}
	harness.Figure(t, "rollout-leader-kill", "min_serving", minServing, "finish_after_kill_ms", finished)
}

// eventsOf reads m's events after since.
func eventsOf(t *testing.T, m *harness.Manager, since uint64) *api.EventsResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := m.Client().Events(ctx, since, 0)
	if err != nil {
		t.Fatalf("events of %s: %v", m.Name, err)
	}
	return r
}

func hasEvent(evs []api.Event, id, state string) bool {
	for _, e := range evs {
		if e.ID == id && e.State == state {
			return true
		}
	}
	return false
}
