package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
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
	up := c.RunEnv(t, repoRoot, env, "up", "--build", "-p", project, "-f", file, "--timeout", "15m")
	t.Logf("up (builds included) took %.1fs:\n%s%s", time.Since(start).Seconds(), up.Stdout, up.Stderr)
	if up.Code != 0 {
		t.Fatalf("%s", up)
	}
	h.WaitFor(t, time.Minute, "three web replicas", c.ExpectRunning(t, project, "web", 3))

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	first := h.WaitShop(t, addr, time.Minute)
	t.Logf("https://%s/ answered:\n%s", addr, first.Body)

	// lb spreads requests over the replicas, and each replica reaches
	// every part: all three answer a complete page.
	seen := map[string]bool{}
	h.WaitFor(t, time.Minute, "complete pages from all three web replicas", func() error {
		p, err := h.GetShop(addr)
		if err != nil {
			return err
		}
		if err := p.Check(); err != nil {
			return err
		}
		seen[p.Web] = true
		if len(seen) < 3 {
			return fmt.Errorf("replicas seen so far: %v", seen)
		}
		return nil
	})

	c.MustRun(t, repoRoot, "down", "--timeout", "2m", "-v", "-p", project)
	expectNoContainersOrNetworks(t, project)
	if vols := h.AppObjects(t, h.KindVolume, project); len(vols) != 0 {
		t.Fatalf("down -v left volumes %v", vols)
	}
}
