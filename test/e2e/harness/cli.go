package harness

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/credfile"
	"github.com/berth-dev/berth/test/testkit"
)

// CommandTimeout bounds one CLI invocation. Generous: `up` of an app whose
// images must be built waits for the builds.
const CommandTimeout = 15 * time.Minute

// Result is what one CLI invocation did.
type Result = testkit.Result

// RunCLI runs the berth binary bin with args in dir. Its environment is the
// test's plus env ("KEY=value"), with HOME and XDG_* moved into home so
// nothing the test runs reads or writes the user's own berth state.
// A command that cannot be started, or outlives CommandTimeout, fails tb.
func RunCLI(tb testing.TB, bin, dir, home string, env []string, args ...string) Result {
	tb.Helper()
	r, err := testkit.RunCLI(tb, CommandTimeout, bin, dir, home, env, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// IsolatedEnv is testkit's: the test's environment with the user's berth
// state, contexts and address moved out of the way.
var IsolatedEnv = testkit.IsolatedEnv

// LocalClient is an API client of the dev server at addr that a process
// with IsolatedEnv(home) started: with the admin token it left in home's
// config, found as the CLI of the same user finds it.
func LocalClient(home, addr string) *api.Client {
	hostPort := strings.TrimPrefix(addr, "http://")
	tok, _ := credfile.Load(credfile.EnvLookup(IsolatedEnv(home)), hostPort)
	return api.NewClient(addr, api.WithToken(tok))
}
