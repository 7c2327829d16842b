package harness

import (
	"testing"
	"time"

	e2e "github.com/berth-dev/berth/test/e2e/harness"
)

// WaitFor waits until cond returns nil, failing tb with cond's last error
// after timeout. It is the e2e harness's, shared so both suites wait alike.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	e2e.WaitFor(tb, timeout, what, cond)
}

// Poll waits until cond returns nil or timeout passes, and returns cond's
// last error then.
func Poll(timeout time.Duration, cond func() error) error {
	return e2e.Poll(timeout, cond)
}
