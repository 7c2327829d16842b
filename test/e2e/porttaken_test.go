package e2e

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	h "github.com/berth-dev/berth/test/e2e/harness"
)

// TestUpPublishedPortTaken: a host port another process holds fails up
// with one sentence naming the port and the holder (not the engine's raw
// error with an endpoint hash), and the rejected task leaves no Created
// container behind.
func TestUpPublishedPortTaken(t *testing.T) {
	h.RequireDocker(t)
	const project = "e2e-porttaken"
	img := h.TestImage(t)
	h.CleanupDocker(t, project) // registered first: runs after the server stops
	c := h.StartCluster(t, berthBin)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	dir := t.TempDir()
	file := h.WriteFile(t, dir, "compose.yaml", `
services:
  web:
    image: `+img+`
    ports: ["127.0.0.1:`+port+`:8080"]
`)
	r := c.Run(t, dir, "up", "-p", project, "-f", file, "--wait-timeout", "2m")
	if r.Code == 0 {
		t.Fatalf("up succeeded on a taken port:\n%s", r)
	}
	if want := "port 127.0.0.1:" + port + "/tcp is taken by process"; !strings.Contains(r.Stderr, want) ||
		strings.Contains(r.Stderr, "endpoint") {
		t.Fatalf("up's error does not say %q in words of its own:\n%s", want, r)
	}
	// The agent does not start the rejected task again; whatever it made
	// for it is gone.
	h.WaitFor(t, 30*time.Second, "no container left for the rejected task", func() error {
		if ids := h.AppObjects(t, h.KindContainer, project); len(ids) > 0 {
			return &leftError{ids}
		}
		return nil
	})
	c.MustRun(t, dir, "down", "--wait-timeout", "2m", "-p", project)
}

type leftError struct{ ids []string }

func (e *leftError) Error() string { return "containers left: " + strings.Join(e.ids, " ") }
