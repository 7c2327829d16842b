package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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

// ErrTimeout means a command was killed because it outlived its deadline.
var ErrTimeout = errors.New("the command did not finish in time and was killed")

// RunCLI runs the berth binary bin with args in dir, its environment
// IsolatedEnv(home) plus env ("KEY=value"). A command that outlives timeout
// is killed and returned with its output so far and an error wrapping
// ErrTimeout; one that cannot be started fails tb.
func RunCLI(tb testing.TB, timeout time.Duration, bin, dir, home string, env []string, args ...string) (Result, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(IsolatedEnv(home), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, fmt.Errorf("berth %v: %w (after %s):\n%s", args, ErrTimeout, timeout, r)
	case err == nil:
	case errors.As(err, &exitErr):
		r.Code = exitErr.ExitCode()
	default:
		tb.Fatalf("run berth %v: %v", args, err)
	}
	return r, nil
}

// IsolatedEnv is the test's environment with the user's berth state,
// config (contexts) and address moved out of the way, so a developer's own
// BERTH_ADDR or current context never steers a test's CLI.
func IsolatedEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		// BERTH_CPUPROFILE and BERTH_HEAPPROFILE (cmd/berth) only
		// profile: a benchmark passes them on.
		if !strings.HasPrefix(kv, "BERTH_") || strings.HasPrefix(kv, "BERTH_CPUPROFILE=") || strings.HasPrefix(kv, "BERTH_HEAPPROFILE=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"HOME="+home,
		"XDG_STATE_HOME="+filepath.Join(home, "state"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
	)
}
