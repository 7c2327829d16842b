package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// upFlagsService is a debian container that runs until told to stop, and
// stops at once on SIGTERM (sleep as PID 1 would ignore it to the grace's
// end).
const upFlagsService = `
    image: debian:bookworm-slim
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
`

// TestUpComposeFlags drives up's docker compose flags on a one-node
// cluster with real containers: up SERVICE deploys it and its dependency
// only, --scale overrides the file, --force-recreate --no-deps replaces an
// unchanged service as a new version and leaves its dependency's task, an
// orphan is kept with a warning and removed with --remove-orphans, and
// --abort-on-container-exit --exit-code-from ends with the container's code.
func TestUpComposeFlags(t *testing.T) {
	h.RequireDocker(t)
	const project = "e2e-upflags"
	h.CleanupDocker(t, project) // registered first: runs after the server stops
	c := h.StartCluster(t, berthBin)
	dir := t.TempDir()
	full := h.WriteFile(t, dir, "compose.yaml", `
services:
  web:`+upFlagsService+`
    depends_on: [db]
  db:`+upFlagsService+`
  extra:`+upFlagsService)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	api := c.Client()

	c.MustRun(t, dir, "up", "-p", project, "-f", full, "web", "--scale", "web=2", "--wait-timeout", "90")
	h.WaitFor(t, time.Minute, "two webs", c.ExpectRunning(t, project, "web", 2))
	h.WaitFor(t, time.Minute, "one db", c.ExpectRunning(t, project, "db", 1))
	app, err := api.GetApp(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	if app.Service("extra") != nil {
		t.Fatalf("up web deployed extra too: %v", app.Services)
	}
	dbTasks := taskIDs(t, c, project, "db")

	r := c.MustRun(t, dir, "up", "-p", project, "-f", full, "web", "--no-deps", "--force-recreate", "-t", "1")
	if !strings.Contains(r.Stdout, "web  changed") || !strings.Contains(r.Stdout, "db   unchanged") {
		t.Errorf("up --force-recreate web said:\n%s", r.Stdout)
	}
	app, err = api.GetApp(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	if v := app.Service("web").Version; v != 2 {
		t.Errorf("web is at version %d after --force-recreate, want 2", v)
	}
	h.WaitFor(t, time.Minute, "one web of the file", c.ExpectRunning(t, project, "web", 1))
	if now := taskIDs(t, c, project, "db"); !equalSets(now, dbTasks) {
		t.Errorf("db's tasks moved from %v to %v under --no-deps", dbTasks, now)
	}

	dbOnly := h.WriteFile(t, dir, "db.yaml", "services:\n  db:"+upFlagsService)
	r = c.MustRun(t, dir, "up", "-p", project, "-f", dbOnly)
	if !strings.Contains(r.Stderr, "found orphan services (web) for app "+project) {
		t.Errorf("no orphan warning naming web:\n%s", r.Stderr)
	}
	h.WaitFor(t, time.Minute, "the orphan web kept", c.ExpectRunning(t, project, "web", 1))
	r = c.MustRun(t, dir, "up", "-p", project, "-f", dbOnly, "--remove-orphans")
	if !strings.Contains(r.Stdout, "web  removed") {
		t.Errorf("up --remove-orphans said:\n%s", r.Stdout)
	}
	h.WaitFor(t, time.Minute, "web removed", c.ExpectRunning(t, project, "web", 0))

	job := h.WriteFile(t, dir, "job.yaml", "services:\n  db:"+upFlagsService+`
  job:
    image: debian:bookworm-slim
    command: ["sh", "-c", "echo job ran; exit 3"]
    restart: "no"
`)
	r = c.Run(t, dir, "up", "-p", project, "-f", job, "--abort-on-container-exit", "--exit-code-from", "job", "-t", "1")
	if r.Code != 3 {
		t.Fatalf("up --exit-code-from job: exit %d, want the job's 3:\n%s", r.Code, r)
	}
	for _, want := range []string{"job-1  | job ran", project + "-job-1 exited with code 3", "Aborting on container exit..."} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.Stdout)
		}
	}
	h.WaitFor(t, time.Minute, "db stopped by the abort", c.ExpectRunning(t, project, "db", 0))
	c.MustRun(t, dir, "down", "-p", project, "-t", "1", "--wait-timeout", "2m")
}

// taskIDs are the IDs of service's tasks meant to run.
func taskIDs(t *testing.T, c *h.Cluster, project, service string) []string {
	t.Helper()
	tasks, err := c.PS(t, project)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tk := range tasks {
		if tk.Service == service && tk.DesiredState == types.DesiredRunning {
			ids = append(ids, tk.ID)
		}
	}
	return ids
}

func equalSets(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]bool{}
	for _, s := range a {
		seen[s] = true
	}
	for _, s := range b {
		if !seen[s] {
			return false
		}
	}
	return true
}
