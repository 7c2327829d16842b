package e2e

import (
	"strings"
	"testing"
	"time"

	h "github.com/berth-dev/berth/test/e2e/harness"
)

// failCase is an app whose `up` must fail quickly, naming what failed.
type failCase struct {
	name    string
	compose string
	want    []string // in up's stderr
	within  time.Duration
}

// An `up` that never lies: a crash loop, a one-shot that fails without a
// restart, and a dependency whose health check fails make `up` exit
// non-zero in seconds (not at its timeout), naming the service, the exit
// code or the health check's output, and the failed task's last log lines.

func TestUpFailsHonestlyExec(t *testing.T) {
	bin := execAppBinary(t) // first: its cleanup runs after the server stops
	c := h.StartCluster(t, berthBin)
	runFailCases(t, c, "e2e-honest-exec", []failCase{
		{
			name: "crash loop",
			compose: `
services:
  crash:
    x-berth-driver: exec
    command: ["sh", "-c", "echo crash-says-bye; exit 1"]
`,
			want:   []string{"service crash", "crash-loops", "code 1", "last log lines of", "crash-says-bye"},
			within: time.Minute,
		},
		{
			name: "one-shot without restart exits 3",
			compose: `
services:
  job:
    x-berth-driver: exec
    command: ["sh", "-c", "echo job-failed-here; exit 3"]
    restart: "no"
`,
			want:   []string{"service job", "code 3", "does not restart", "job-failed-here"},
			within: time.Minute,
		},
		{
			name: "unhealthy dependency",
			compose: `
services:
  api:
    x-berth-driver: exec
    command: ["` + bin + `"]
    environment: {PORT: "0"}
    depends_on:
      db: {condition: service_healthy}
  db:
    x-berth-driver: exec
    command: ["` + bin + `"]
    environment: {PORT: "0"}
    healthcheck:
      test: ["CMD-SHELL", "echo db-probe-says-no; exit 1"]
      interval: 500ms
      retries: 2
`,
			want:   []string{"service db", "unhealthy", "failed 2 times", "db-probe-says-no"},
			within: time.Minute,
		},
	})
}

func TestUpFailsHonestlyDocker(t *testing.T) {
	h.RequireDocker(t)
	const project = "e2e-honest-docker"
	img := h.TestImage(t)
	h.CleanupDocker(t, project) // registered first: runs after the server stops
	c := h.StartCluster(t, berthBin)
	runFailCases(t, c, project, []failCase{
		{
			name: "crash loop",
			compose: `
services:
  crash:
    image: ` + img + `
    environment: {MODE: oneshot, EXIT_CODE: "1"}
`,
			want:   []string{"service crash", "crash-loops", "code 1", "last log lines of", "oneshot: done"},
			within: 90 * time.Second,
		},
		{
			name: "one-shot without restart exits 3",
			compose: `
services:
  job:
    image: ` + img + `
    environment: {MODE: oneshot, EXIT_CODE: "3"}
    restart: "no"
`,
			want:   []string{"service job", "code 3", "does not restart", "oneshot: done"},
			within: 90 * time.Second,
		},
		{
			name: "unhealthy dependency",
			compose: `
services:
  api:
    image: ` + img + `
    depends_on:
      db: {condition: service_healthy}
  db:
    image: ` + img + `
    environment: {UNHEALTHY_FILE: /app}
    healthcheck:
      test: ["CMD", "/app", "healthcheck"]
      interval: 1s
      retries: 2
`,
			want:   []string{"service db", "unhealthy", "failed 2 times", "health: 500"},
			within: 90 * time.Second,
		},
	})
}

func runFailCases(t *testing.T, c *h.Cluster, project string, cases []failCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := h.WriteFile(t, dir, "compose.yaml", tc.compose)
			start := time.Now()
			r := c.Run(t, dir, "up", "-p", project, "-f", file, "--wait-timeout", "4m")
			took := time.Since(start)
			t.Logf("up failed after %s:\n%s", took.Round(100*time.Millisecond), r)
			defer c.MustRun(t, dir, "down", "--wait-timeout", "2m", "-p", project)
			if r.Code == 0 {
				t.Fatalf("up succeeded:\n%s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("up's error lacks %q:\n%s", w, r.Stderr)
				}
			}
			if took > tc.within {
				t.Errorf("up took %s to fail, want under %s", took.Round(time.Second), tc.within)
			}
		})
	}
}
