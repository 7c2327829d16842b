package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	h "github.com/berth-dev/berth/test/e2e/harness"
)

// TestHelloExample deploys examples/hello as the README shows it (under its
// own project name and port) and reaches web through lb's published port.
// The first run builds three Debian-based images; later runs reuse their
// cached layers.
func TestHelloExample(t *testing.T) {
	h.RequireDocker(t)
	const project = "e2e-hello"
	h.CleanupDocker(t, project) // registered first: runs after the server stops
	c := h.StartCluster(t, berthBin)
	port := h.FreePort(t)
	env := []string{"HELLO_PORT=" + strconv.Itoa(port)}
	file := filepath.Join(repoRoot, "examples", "hello", "compose.yaml")

	// --build: the images' tags do not change with the Dockerfiles, so
	// rebuild (from cached layers, in seconds) to test what is committed.
	up := c.RunEnv(t, repoRoot, env, "up", "--build", "-p", project, "-f", file, "--wait-timeout", "15m")
	t.Logf("up:\n%s%s", up.Stdout, up.Stderr)
	if up.Code != 0 {
		t.Fatalf("%s", up)
	}
	h.WaitFor(t, time.Minute, "three web replicas", c.ExpectRunning(t, project, "web", 3))

	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	first := h.HTTPGet(t, url, time.Minute)
	if !strings.Contains(first, "Hello from berth!") || !strings.Contains(first, "visited") {
		t.Fatalf("GET %s = %q, want the greeting secret and a visit count", url, first)
	}

	// lb re-resolves web every second, so new replicas come to answer.
	c.MustRun(t, repoRoot, "scale", "-p", project, "web=5")
	h.WaitFor(t, 2*time.Minute, "five web replicas", c.ExpectRunning(t, project, "web", 5))
	seen := map[string]bool{}
	h.WaitFor(t, time.Minute, "requests through lb reach several replicas", func() error {
		body := h.HTTPGet(t, url, 30*time.Second)
		if _, rest, ok := strings.Cut(body, "I am "); ok {
			seen[strings.SplitN(rest, ";", 2)[0]] = true
		}
		if len(seen) < 4 {
			return fmt.Errorf("replicas seen so far: %v", seen)
		}
		return nil
	})

	c.MustRun(t, repoRoot, "down", "--wait-timeout", "2m", "-v", "-p", project)
	expectNoContainersOrNetworks(t, project)
	if vols := h.AppObjects(t, h.KindVolume, project); len(vols) != 0 {
		t.Fatalf("down -v left volumes %v", vols)
	}
}
