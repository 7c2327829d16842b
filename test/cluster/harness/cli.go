package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	e2e "github.com/berth-dev/berth/test/e2e/harness"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// commandTimeout bounds one CLI invocation.
const commandTimeout = 2 * time.Minute

// Result is what one CLI invocation did.
type Result struct {
	Args   []string
	Stdout string
	Stderr string
	Code   int
}

func (r Result) String() string {
	return fmt.Sprintf("berth %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// runCLI runs bin with args in dir, with HOME and XDG_* moved into home so
// nothing the test runs reads or writes the user's own berth state. A
// command that cannot be started, or outlives commandTimeout, fails tb.
func runCLI(tb testing.TB, bin, dir, home string, env []string, args ...string) Result {
	tb.Helper()
	r, err := runCLIWithin(tb, commandTimeout, bin, dir, home, env, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// errTimeout means a command was killed because it outlived its deadline.
var errTimeout = errors.New("the command did not finish in time and was killed")

// runCLIWithin is runCLI that returns errTimeout (with the output so far)
// instead of failing tb when the command outlives timeout. env ("KEY=value")
// is added to the isolated environment.
func runCLIWithin(tb testing.TB, timeout time.Duration, bin, dir, home string, env []string, args ...string) (Result, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(e2e.IsolatedEnv(home), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, fmt.Errorf("berth %v: %w (after %s):\n%s", args, errTimeout, timeout, r)
	case err == nil:
	case errors.As(err, &exitErr):
		r.Code = exitErr.ExitCode()
	default:
		tb.Fatalf("run berth %v: %v", args, err)
	}
	return r, nil
}

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
