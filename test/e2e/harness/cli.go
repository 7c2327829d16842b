package harness

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

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/credfile"
)

// CommandTimeout bounds one CLI invocation. Generous: `up` of an app whose
// images must be built waits for the builds.
const CommandTimeout = 15 * time.Minute

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

// RunCLI runs the berth binary bin with args in dir. Its environment is the
// test's plus env ("KEY=value"), with HOME and XDG_STATE_HOME moved into
// home so nothing the test runs reads or writes the user's own berth state.
// A command that cannot be started, or outlives CommandTimeout, fails tb.
func RunCLI(tb testing.TB, bin, dir, home string, env []string, args ...string) Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
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
	case err == nil:
	case errors.As(err, &exitErr):
		r.Code = exitErr.ExitCode()
	default:
		tb.Fatalf("run berth %v: %v", args, err)
	}
	if ctx.Err() != nil {
		tb.Fatalf("berth %v did not finish within %s:\n%s", args, CommandTimeout, r)
	}
	return r
}

// IsolatedEnv is the test's environment with the user's berth state,
// config (contexts) and address moved out of the way, so a developer's own
// BERTH_ADDR or current context never steers a test's CLI.
func IsolatedEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BERTH_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"HOME="+home,
		"XDG_STATE_HOME="+filepath.Join(home, "state"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
	)
}

// LocalClient is an API client of the dev server at addr that a process
// with IsolatedEnv(home) started: with the admin token it left in home's
// config, found as the CLI of the same user finds it.
func LocalClient(home, addr string) *api.Client {
	hostPort := strings.TrimPrefix(addr, "http://")
	tok, _ := credfile.Load(credfile.EnvLookup(IsolatedEnv(home)), hostPort)
	return api.NewClient(addr, api.WithToken(tok))
}
