package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	h "github.com/berth-dev/berth/test/e2e/harness"
)

// TestUpMissingImage: up must fail, not hang, and name the service whose
// image does not exist.
func TestUpMissingImage(t *testing.T) {
	h.RequireDocker(t)
	const project = "e2e-noimage"
	h.CleanupDocker(t, project) // registered first: runs after the server stops
	c := h.StartCluster(t, berthBin)
	dir := t.TempDir()
	file := h.WriteFile(t, dir, "compose.yaml", `
services:
  ghost:
    image: berth-e2e/does-not-exist:never
`)
	start := time.Now()
	r := c.Run(t, dir, "up", "-p", project, "-f", file, "--wait-timeout", "3m")
	t.Logf("up ended after %s:\n%s", time.Since(start).Round(time.Second), r)
	if r.Code == 0 {
		t.Fatalf("up succeeded with a missing image:\n%s", r)
	}
	if !strings.Contains(r.Stderr, "ghost") {
		t.Fatalf("up's error does not name the service ghost:\n%s", r)
	}
	c.MustRun(t, dir, "down", "--wait-timeout", "2m", "-p", project)
}

// TestUpFixedPortReplicas: replicas of one node cannot share a fixed host
// port in mode: host (Docker publishes it, once per node), so up fails
// naming the service and the port and one replica runs; on the default
// ingress port the routing mesh holds the port and balances all three.
func TestUpFixedPortReplicas(t *testing.T) {
	h.RequireDocker(t)
	const project = "e2e-fixedport"
	img := h.TestImage(t)
	h.CleanupDocker(t, project) // registered first: runs after the server stops
	c := h.StartCluster(t, berthBin)
	port := strconv.Itoa(h.FreePort(t))
	dir := t.TempDir()
	file := h.WriteFile(t, dir, "compose.yaml", `
services:
  web:
    image: `+img+`
    ports:
      - {target: 8080, published: `+port+`, host_ip: 127.0.0.1, mode: host}
    deploy:
      replicas: 3
`)
	r := c.Run(t, dir, "up", "-p", project, "-f", file, "--wait-timeout", "3m")
	if r.Code == 0 {
		t.Fatalf("up succeeded with 3 replicas on one fixed host-mode port:\n%s", r)
	}
	if !strings.Contains(r.Stderr, "web") || !strings.Contains(r.Stderr, "port "+port) {
		t.Fatalf("up's error does not name the service web and port %s:\n%s", port, r)
	}
	h.WaitFor(t, time.Minute, "one web replica running", func() error {
		tasks, err := c.PS(t, project)
		if err != nil {
			return err
		}
		if n := len(h.Running(tasks, "web")); n != 1 {
			return fmt.Errorf("%d web replicas running, want 1: %s", n, h.Describe(tasks))
		}
		return nil
	})
	c.MustRun(t, dir, "down", "--wait-timeout", "2m", "-p", project)

	file = h.WriteFile(t, dir, "compose.yaml", `
services:
  web:
    image: `+img+`
    ports: ["127.0.0.1:`+port+`:8080"]
    deploy:
      replicas: 3
`)
	c.MustRun(t, dir, "up", "-p", project, "-f", file, "--wait-timeout", "3m")
	h.WaitFor(t, time.Minute, "three web replicas", c.ExpectRunning(t, project, "web", 3))
	h.HTTPGet(t, "http://127.0.0.1:"+port+"/", time.Minute)
	c.MustRun(t, dir, "down", "--wait-timeout", "2m", "-p", project)
}

// TestConfigReportsUnsupportedKeys: config prints the resolved app, with
// variables interpolated, and names every key berth does not honour. It
// needs no cluster.
func TestConfigReportsUnsupportedKeys(t *testing.T) {
	dir := t.TempDir()
	file := h.WriteFile(t, dir, "compose.yaml", `
name: e2e-config
services:
  web:
    image: nginx:${NGINX_TAG:-1.25}
    devices:
      - /dev/null:/dev/null
    deploy:
      replicas: 2
      update_config:
        parallelism: 1
`)
	r := h.RunCLI(t, berthBin, dir, dir, []string{"NGINX_TAG=1.27"}, "config", "-f", file)
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	out := r.Stdout + r.Stderr
	for _, want := range []string{"devices", "update_config", "nginx:1.27", "e2e-config"} {
		if !strings.Contains(out, want) {
			t.Errorf("config output does not mention %q:\n%s", want, out)
		}
	}
}
