package testkit

import (
	"testing"
	"time"
)

// pollEvery is how often WaitFor checks a condition again.
const pollEvery = 250 * time.Millisecond

// WaitFor checks cond until it returns nil or timeout passes; then it fails
// tb with what was awaited and the last reason cond gave.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	if err := Poll(timeout, cond); err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// Poll checks cond until it returns nil, or returns its last error once
// timeout has passed.
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return &timeoutError{after: timeout, last: err}
		}
		time.Sleep(pollEvery)
	}
}

type timeoutError struct {
	after time.Duration
	last  error
}

func (e *timeoutError) Error() string {
	return "still not so after " + e.after.String() + ": " + e.last.Error()
}

func (e *timeoutError) Unwrap() error { return e.last }
