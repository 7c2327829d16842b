package e2e

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// TestDownAfterServerStop: after `berth server stop` the app keeps running
// (by design) and server stop says so and how to remove it; `berth down`
// then starts the local cluster again, as up does, and removes the app
// (it said no manager answers).
func TestDownAfterServerStop(t *testing.T) {
	const project = "e2e-downlocal"
	defaultHost := strings.TrimPrefix(api.DefaultAddr, "http://")
	requireFree(t, defaultHost)
	home := t.TempDir()
	env := []string{"BERTH_ADDR="}
	berth := func(args ...string) h.Result { return h.RunCLI(t, berthBin, home, home, env, args...) }
	bin := execAppBinary(t)
	t.Cleanup(func() { stopDefaultManager(t, home, berth) })

	port := h.FreePort(t)
	file := h.WriteFile(t, home, "compose.yaml", strings.NewReplacer("{{bin}}", bin, "{{port}}", strconv.Itoa(port)).Replace(`
services:
  alpha:
    x-berth-driver: exec
    command: ["{{bin}}"]
    environment:
      PORT: "{{port}}"
`))
	if r := berth("up", "-p", project, "-f", file); r.Code != 0 {
		t.Fatalf("%s", r)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	h.HTTPGet(t, url, 30*time.Second)

	stop := berth("server", "stop")
	if stop.Code != 0 || !strings.Contains(stop.Stdout, "keep running") || !strings.Contains(stop.Stdout, "berth down") {
		t.Fatalf("server stop does not say the apps keep running and how to remove them:\n%s", stop)
	}
	h.HTTPGet(t, url, 10*time.Second) // still serving: the app outlives its manager

	down := berth("down", "-p", project, "--wait-timeout", "2m")
	if down.Code != 0 || !strings.Contains(down.Stdout, "Started a local one-node cluster") || !strings.Contains(down.Stdout, "Removed app "+project) {
		t.Fatalf("down did not start the local cluster and remove the app:\n%s", down)
	}
	h.WaitFor(t, 30*time.Second, "the app's process gone", func() error {
		if code, _ := h.HTTPStatus(url); code != 0 {
			return fmt.Errorf("the app still answers at %s", url)
		}
		return nil
	})
	if r := berth("server", "stop"); r.Code != 0 {
		t.Fatalf("%s", r)
	}
	// Any answer, even a 401, is a manager still there; only a refused
	// connection is none.
	if _, err := api.NewClient(api.DefaultAddr, api.WithTimeouts(5*time.Second, 0)).Status(context.Background()); err == nil || errors.As(err, new(*api.Error)) {
		t.Fatalf("a manager still answers after server stop (%v)", err)
	}
}
