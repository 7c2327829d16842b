package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
	"go.yaml.in/yaml/v4"
)

// TestListingFormats runs the listing commands' formats against a real dev
// cluster with a docker task and an exec task: what scripts read from ps,
// ls, service ls and inspect, and logs' window and prefix flags, which
// reach the task's node and its engine.
func TestListingFormats(t *testing.T) {
	h.RequireDocker(t)
	const project = "e2e-list"
	bin := execAppBinary(t)
	h.CleanupDocker(t, project)
	c := h.StartCluster(t, berthBin)
	image := h.TestImage(t)
	dir := t.TempDir()
	file := h.WriteFile(t, dir, "compose.yaml", fmt.Sprintf(`
services:
  web:
    image: %s
  job:
    x-berth-driver: exec
    command: [%q]
    environment:
      PORT: "0"
`, image, bin))
	before := time.Now().UTC().Add(-time.Second)
	c.MustRun(t, dir, "up", "-p", project, "-f", file, "--timeout", "3m")
	h.WaitFor(t, time.Minute, "web running", c.ExpectRunning(t, project, "web", 1))
	h.WaitFor(t, time.Minute, "job running", c.ExpectRunning(t, project, "job", 1))
	ps := func(args ...string) string {
		return c.MustRun(t, dir, append([]string{"ps", "-p", project}, args...)...).Stdout
	}

	t.Run("ps -q and --services", func(t *testing.T) {
		tasks, err := c.PS(t, project)
		if err != nil {
			t.Fatal(err)
		}
		ids := strings.Fields(ps("-q"))
		if len(ids) != 2 || !slices.ContainsFunc(tasks, func(tk *types.Task) bool { return tk.ID == ids[0] }) {
			t.Errorf("ps -q = %v, tasks %s", ids, h.Describe(tasks))
		}
		if got := ps("--services"); got != "job\nweb\n" {
			t.Errorf("ps --services = %q", got)
		}
		if got := ps("--status", "exited", "-q"); got != "" {
			t.Errorf("ps --status exited -q = %q, want nothing", got)
		}
	})
	t.Run("ps --format json and -o yaml", func(t *testing.T) {
		var rows []api.TaskSummary
		for _, line := range strings.Split(strings.TrimSpace(ps("--format", "json")), "\n") {
			var r api.TaskSummary
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			rows = append(rows, r)
		}
		if len(rows) != 2 || rows[0].Name != project+"-job-1" || rows[1].Name != project+"-web-1" ||
			rows[1].State != "running" || rows[1].Image != image || rows[1].Node == "" || !strings.HasPrefix(rows[1].Status, "Up ") {
			t.Errorf("ps --format json = %+v", rows)
		}
		var docs []map[string]any
		if err := yaml.Unmarshal([]byte(ps("-o", "yaml")), &docs); err != nil || len(docs) != 2 || docs[1]["Name"] != project+"-web-1" {
			t.Errorf("ps -o yaml = %v, %v", docs, err)
		}
		if got := ps("--format", "{{.Service}}={{.State}}"); got != "job=running\nweb=running\n" {
			t.Errorf("ps --format template = %q", got)
		}
	})
	t.Run("ls, service ls and inspect", func(t *testing.T) {
		ls := c.MustRun(t, dir, "ls", "--format", "json").Stdout
		if !strings.Contains(ls, `{"Name":"`+project+`","Status":"running(2)"`) {
			t.Errorf("ls --format json = %s", ls)
		}
		var svcs []api.ServiceSummary
		if err := json.Unmarshal([]byte(c.MustRun(t, dir, "service", "ls", "-o", "json").Stdout), &svcs); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(svcs, func(s api.ServiceSummary) bool { return s.Name == project+"_web" && s.Replicas == "1/1" }) {
			t.Errorf("service ls -o json = %+v", svcs)
		}
		var in api.TaskInspection
		if err := json.Unmarshal([]byte(c.MustRun(t, dir, "inspect", "-p", project, project+"-web-1", "-o", "json").Stdout), &in); err != nil {
			t.Fatal(err)
		}
		if in.ContainerID == "" || in.Node == "" || in.State != "running" || !strings.Contains(string(in.ServiceSpec), image) {
			t.Errorf("inspect -o json = %+v", in)
		}
	})
	t.Run("logs window and prefix", func(t *testing.T) {
		logs := func(args ...string) h.Result {
			return c.Run(t, dir, append([]string{"logs", "-p", project}, args...)...)
		}
		if r := logs("--no-log-prefix", "web"); r.Code != 0 || !strings.HasPrefix(r.Stdout, "listening on :") {
			t.Errorf("logs --no-log-prefix: %s", r)
		}
		if r := logs("--since", "1h", "web"); r.Code != 0 || !strings.Contains(r.Stdout, "| listening on :") {
			t.Errorf("logs --since 1h: %s", r)
		}
		if r := logs("--until", before.Format(time.RFC3339Nano), "web"); r.Code != 0 || r.Stdout != "" {
			t.Errorf("logs --until a time before up printed lines: %s", r)
		}
		if r := logs("--since", "1h", "job"); r.Code != 1 || !strings.Contains(r.Stderr, "keeps no time for its log lines; drop --since and --until") {
			t.Errorf("logs --since on an exec task: %s", r)
		}
	})
	c.MustRun(t, dir, "down", "--timeout", "2m", "-p", project)
}
