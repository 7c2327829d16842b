package harness

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/test/testkit"
)

// commandTimeout bounds one CLI invocation.
const commandTimeout = 2 * time.Minute

// Result is what one CLI invocation did.
type Result = testkit.Result

// runCLI runs bin with args in dir, with HOME and XDG_* moved into home so
// nothing the test runs reads or writes the user's own berth state. A
// command that cannot be started, or outlives commandTimeout, fails tb.
func runCLI(tb testing.TB, bin, dir, home string, env []string, args ...string) Result {
	tb.Helper()
	r, err := testkit.RunCLI(tb, commandTimeout, bin, dir, home, env, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// runCLIWithin is runCLI that returns testkit.ErrTimeout (with the output
// so far) instead of failing tb when the command outlives timeout.
var runCLIWithin = testkit.RunCLI

// Run runs the berth CLI against manager m's API (--addr is added).
func (c *Cluster) Run(tb testing.TB, m *Manager, args ...string) Result {
	tb.Helper()
	r := runCLI(tb, c.bin, c.dir, c.dir, m.tokenEnv(), append([]string{"--addr", m.URL()}, args...)...)
	r.Args = args
	return r
}

// MustRun is Run that fails tb unless the command exits 0.
func (c *Cluster) MustRun(tb testing.TB, m *Manager, args ...string) Result {
	tb.Helper()
	r := c.Run(tb, m, args...)
	if r.Code != 0 {
		tb.Fatalf("on %s: %s", m.Name, r)
	}
	return r
}

// RunWithin is Run bounded by timeout: a command that outlives it is killed
// and reported as an error, for commands that must fail promptly.
func (c *Cluster) RunWithin(tb testing.TB, timeout time.Duration, m *Manager, args ...string) (Result, error) {
	tb.Helper()
	r, err := runCLIWithin(tb, timeout, c.bin, c.dir, c.dir, m.tokenEnv(), append([]string{"--addr", m.URL()}, args...)...)
	r.Args = args
	return r, err
}

// tokenEnv passes the cluster's admin token to a CLI run, as a user would
// with BERTH_TOKEN.
func (m *Manager) tokenEnv() []string { return []string{"BERTH_TOKEN=" + m.Token()} }
