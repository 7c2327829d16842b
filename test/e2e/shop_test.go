package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	h "github.com/berth-dev/berth/test/e2e/harness"
)

// TestShopExample deploys examples/shop as its README shows (under its own
// project name and port): lb answers over TLS with the certificate it
// made, and the page proves that web reached auth, search, redis, MariaDB
// and the log service, from each of the three web replicas. A cold run
// builds seven Debian-based images (about two minutes here); later runs
// reuse their cached layers.
func TestShopExample(t *testing.T) {
	h.RequireDocker(t)
	const project = "e2e-shop"
	h.CleanupDocker(t, project) // registered first: runs after the server stops
	c := h.StartCluster(t, berthBin)
	port := h.FreePort(t)
	env := []string{"SHOP_PORT=" + strconv.Itoa(port)}
	file := filepath.Join(repoRoot, "examples", "shop", "compose.yaml")

	start := time.Now()
	// --build: the images' tags do not change with the Dockerfiles, so
	// rebuild (from cached layers, in seconds) to test what is committed.
	up := c.RunEnv(t, repoRoot, env, "up", "--build", "-p", project, "-f", file, "--wait-timeout", "15m")
	t.Logf("up (builds included) took %.1fs:\n%s%s", time.Since(start).Seconds(), up.Stdout, up.Stderr)
	if up.Code != 0 {
		t.Fatalf("%s", up)
	}
	h.WaitFor(t, time.Minute, "three web replicas", c.ExpectRunning(t, project, "web", 3))

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	start = time.Now()
	first := h.WaitShop(t, addr, time.Minute)
	t.Logf("https://%s/ answered after %.1fs:\n%s", addr, time.Since(start).Seconds(), first.Body)

	// lb spreads requests over the replicas, and each replica reaches
	// every part: all three answer a complete page.
	start = time.Now()
	h.WaitFor(t, time.Minute, "complete pages from all three web replicas", h.ShopServed(addr, map[string]bool{}, 3))
	t.Logf("complete pages from the three web replicas after %.1fs", time.Since(start).Seconds())

	start = time.Now()

	c.MustRun(t, repoRoot, "down", "--wait-timeout", "2m", "-v", "-p", project)
	t.Logf("down -v: %.1fs", time.Since(start).Seconds())
	expectNoContainersOrNetworks(t, project)
	if vols := h.AppObjects(t, h.KindVolume, project); len(vols) != 0 {
		t.Fatalf("down -v left volumes %v", vols)
	}
}

// TestShopExampleCompose runs the same file with Docker Compose, when this
// machine has it: the page is as complete as under berth, so the example
// stays a plain Compose app.
func TestShopExampleCompose(t *testing.T) {
	h.RequireDocker(t)
	compose := composeCommand(t)
	const project = "e2e-shop-compose"
	port := h.FreePort(t)
	file := filepath.Join(repoRoot, "examples", "shop", "compose.yaml")
	run := func(args ...string) (string, error) {
		args = append(append(compose[1:], "-p", project, "-f", file), args...)
		cmd := exec.Command(compose[0], args...)
		cmd.Env = append(os.Environ(), "SHOP_PORT="+strconv.Itoa(port))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		// -t is the flag both Compose versions know; v1 answers an unknown
		// flag with its usage and exit code 0, which once left the whole
		// app running.
		if out, err := run("down", "-v", "-t", "30"); err != nil {
			t.Errorf("%s down: %v\n%s", strings.Join(compose, " "), err, out)
		}
		out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+project).CombinedOutput()
		if err != nil {
			t.Errorf("docker ps: %v\n%s", err, out)
		} else if left := strings.Fields(string(out)); len(left) > 0 {
			t.Errorf("%s down left %d containers of %s", strings.Join(compose, " "), len(left), project)
		}
	})
	start := time.Now()
	// up -d returns once every container started, after each depends_on
	// condition was met.
	if out, err := run("up", "-d", "--build"); err != nil {
		t.Fatalf("%s up: %v\n%s", strings.Join(compose, " "), err, out)
	}
	t.Logf("%s up -d --build: %.1fs", strings.Join(compose, " "), time.Since(start).Seconds())
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	h.WaitFor(t, time.Minute, "complete pages from all three web replicas", h.ShopServed(addr, map[string]bool{}, 3))
}

// composeCommand is `docker compose` (v2) or else `docker-compose` (v1);
// the test skips when the machine has neither.
func composeCommand(t *testing.T) []string {
	t.Helper()
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	t.Skip("neither docker compose nor docker-compose is installed")
	return nil
}
