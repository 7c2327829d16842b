package cli

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// errNoManager is returned when nothing listens at the manager address.
type errNoManager struct {
	addr string
	err  error
}

func (e *errNoManager) Error() string {
	return fmt.Sprintf("no berth manager answers at %s; start one with `berth server --dev` or run `berth up`", e.addr)
}

func (e *errNoManager) Unwrap() error { return e.err }

// describeError turns err into the one line the user reads after "error: ".
// API errors keep the manager's phrasing (they name the field); callers
// add context only where the manager's words would not say what failed.
func describeError(err error, e *env) string {
	var noMgr *errNoManager
	switch {
	case errors.As(err, &noMgr):
		return noMgr.Error()
	case isConnRefused(err):
		return (&errNoManager{addr: e.global.addr, err: err}).Error()
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return err.Error()
}

// isConnRefused reports whether err means no process listens at the address.
func isConnRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
