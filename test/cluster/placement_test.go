package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// TestPlacement places tasks by node labels given at agent start, on four
// agents in three zones (zone b has two): a constraint places only where it
// holds, a spread preference evenly over zones (not over nodes, which would
// give zone b half), and a task that fits nowhere stays pending with the
// reason shown by `berth ps`.
func TestPlacement(t *testing.T) {
	c := start(t, harness.Options{Agents: harness.Zones("a", "b", "b", "c")})
	leader := c.Leader(t, 10*time.Second)
	zoneOf := map[string]string{}
	for _, a := range c.Agents {
		zoneOf[c.NodeByName(t, leader, a.Name).ID] = a.Labels["zone"]
	}

	onlyb := writeApp(t, c, "onlyb", service{name: "web", replicas: 4, deploy: `      placement:
        constraints: ["node.labels.zone==b"]
`})
	t.Run("constraint", func(t *testing.T) {
		file := onlyb
		c.MustRun(t, leader, "up", "-d", "-f", file)
		harness.WaitFor(t, time.Minute, "web running", c.ExpectRunning(leader, "onlyb", "web", 4))
		perZone := runningPerZone(t, c, leader, "onlyb", zoneOf)
		if perZone["b"] != 4 || len(perZone) != 1 {
			t.Errorf("tasks per zone %v, want all 4 in zone b", perZone)
		}
	})

	// The CLI talks to a manager only; the manager hands an exec to the
	// agent of the task's node (an agent process of its own here), which
	// runs the command in the task's environment.
	t.Run("exec into a task on another agent", func(t *testing.T) {
		r := c.Run(t, leader, "-p", "onlyb", "exec", "-T", "--index", "2", "web", "sh", "-c", `echo "$MESSAGE"; echo to-stderr >&2; exit 4`)
		if r.Code != 4 || strings.TrimSpace(r.Stdout) != "web" || !strings.Contains(r.Stderr, "to-stderr") || strings.Contains(r.Stdout, "to-stderr") {
			t.Errorf("exec: exit %d, stdout %q, stderr %q; want 4, the task's MESSAGE, and stderr apart", r.Code, r.Stdout, r.Stderr)
		}
	})

	// berth run: the scheduler places the one-off (on zone b, as web's
	// placement says), and its output and exit code come back from that
	// agent through the manager; --rm leaves nothing.
	t.Run("run --rm a one-off on another agent", func(t *testing.T) {
		r := c.Run(t, leader, "-p", "onlyb", "-f", onlyb, "run", "--rm", "web", "sh", "-c", `echo "$MESSAGE"; exit 3`)
		if r.Code != 3 || strings.TrimSpace(r.Stdout) != "web" {
			t.Fatalf("run: exit %d, stdout %q, stderr %q; want 3 and the task's MESSAGE", r.Code, r.Stdout, r.Stderr)
		}
		harness.WaitFor(t, 30*time.Second, "the one-off gone", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			app, err := leader.Client().GetApp(ctx, "onlyb")
			if err != nil {
				return err
			}
			tasks, _, err := leader.Client().ListTasks(ctx, api.TaskQuery{App: "onlyb"})
			if err != nil {
				return err
			}
			for _, tk := range tasks {
				if tk.Service != "web" {
					return fmt.Errorf("task %s (%s) left", tk.Name(), tk.State)
				}
			}
			if len(app.Services) != 1 {
				return fmt.Errorf("services %d, want web alone", len(app.Services))
			}
			return nil
		})
	})

	t.Run("spread over zones", func(t *testing.T) {
		file := writeApp(t, c, "spread", service{name: "web", replicas: 6, deploy: `      placement:
        preferences:
          - spread: node.labels.zone
`})
		c.MustRun(t, leader, "up", "-d", "-f", file)
		harness.WaitFor(t, time.Minute, "web running", c.ExpectRunning(leader, "spread", "web", 6))
		perZone := runningPerZone(t, c, leader, "spread", zoneOf)
		for _, z := range []string{"a", "b", "c"} {
			if perZone[z] != 2 {
				t.Errorf("tasks per zone %v, want 2 in each of a, b, c", perZone)
				break
			}
		}
	})

	t.Run("fits nowhere", func(t *testing.T) {
		file := writeApp(t, c, "nowhere", service{name: "web", replicas: 1, deploy: `      placement:
        constraints: ["node.labels.zone==z"]
`})
		c.MustRun(t, leader, "up", "-d", "-f", file)
		harness.WaitFor(t, 30*time.Second, "web pending with a reason", func() error {
			tasks, err := c.Tasks(leader, "nowhere")
			if err != nil {
				return err
			}
			if len(tasks) != 1 || tasks[0].State != types.TaskPending || tasks[0].PendingReason == "" {
				return fmt.Errorf("want one pending task with a reason: %s", harness.Describe(tasks))
			}
			return nil
		})
		ps := c.MustRun(t, leader, "-p", "nowhere", "ps")
		t.Logf("berth ps:\n%s", ps.Stdout)
		for _, want := range []string{"pending", "0/4 nodes", "node.labels.zone==z"} {
			if !strings.Contains(ps.Stdout, want) {
				t.Errorf("berth ps does not say %q:\n%s", want, ps.Stdout)
			}
		}
	})
}

// runningPerZone counts app's running tasks by the zone of their node.
func runningPerZone(t *testing.T, c *harness.Cluster, m *harness.Manager, app string, zoneOf map[string]string) map[string]int {
	t.Helper()
	tasks, err := c.Tasks(m, app)
	if err != nil {
		t.Fatal(err)
	}
	perZone := map[string]int{}
	for _, tk := range harness.Running(tasks, "web") {
		perZone[zoneOf[tk.NodeID]]++
	}
	return perZone
}
