package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/ipam"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// TestEmbeddedDefault follows the README: with no cluster configured and
// none answering at the default address, `berth up` starts a local one
// itself, later commands use it, and `berth server stop` stops it.
func TestEmbeddedDefault(t *testing.T) {
	const project = "e2e-embedded"
	defaultHost := strings.TrimPrefix(api.DefaultAddr, "http://")
	requireFree(t, defaultHost)
	// The local cluster's overlay has the default pool; its unreachable
	// route outlives the cluster and may cover this machine's resolver.
	t.Cleanup(func() { h.DropPoolRoute(ipam.DefaultPool) })
	home := t.TempDir()
	env := []string{"BERTH_ADDR="} // the test's own environment must not choose
	berth := func(args ...string) h.Result { return h.RunCLI(t, berthBin, home, home, env, args...) }
	bin := execAppBinary(t)
	// Registered after execAppBinary, so it runs first: stop the manager,
	// then kill what it left.
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

	up := berth("up", "-p", project, "-f", file)
	if up.Code != 0 {
		t.Fatalf("%s", up)
	}
	stateDir := filepath.Join(home, "state", "berth")
	if out := up.Stdout + up.Stderr; !strings.Contains(out, "Started a local one-node cluster") || !strings.Contains(out, stateDir) {
		t.Fatalf("up did not say it started a local cluster with its data under %s:\n%s", stateDir, up)
	}
	h.HTTPGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 30*time.Second)

	again := berth("up", "-p", project, "-f", file)
	if again.Code != 0 || strings.Contains(again.Stdout+again.Stderr, "Started") {
		t.Fatalf("second up did not reuse the running local cluster:\n%s", again)
	}
	if r := berth("down", "-p", project, "--wait-timeout", "2m"); r.Code != 0 {
		t.Fatalf("%s", r)
	}
	if r := berth("server", "stop"); r.Code != 0 {
		t.Fatalf("%s", r)
	}
	if st, err := h.LocalClient(home, api.DefaultAddr).Status(context.Background()); err == nil {
		t.Fatalf("a manager (pid %d) still answers at %s after server stop", st.PID, api.DefaultAddr)
	}
}

// requireFree skips t when something listens at hostPort already: the
// embedded default only starts where nothing answers.
func requireFree(t *testing.T, hostPort string) {
	t.Helper()
	l, err := net.Listen("tcp", hostPort)
	if err != nil {
		t.Skipf("%s is in use (a berth cluster of this machine?): %v", hostPort, err)
	}
	l.Close()
}

// stopDefaultManager makes sure no manager the test started is left at the
// default address: `berth server stop`, then its PID if that failed.
func stopDefaultManager(t *testing.T, home string, berth func(...string) h.Result) {
	c := h.LocalClient(home, api.DefaultAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Status(ctx); err != nil {
		return
	}
	if r := berth("server", "stop"); r.Code == 0 {
		return
	}
	if st, err := c.Status(ctx); err == nil && st.PID > 0 {
		t.Logf("server stop failed; killing the manager, pid %d", st.PID)
		_ = syscall.Kill(st.PID, syscall.SIGKILL)
	}
}
