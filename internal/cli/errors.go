package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/api"
)

// errNoManager is returned when nothing listens at the manager address.
type errNoManager struct {
	addr    string
	context string // the context that named addr, if one did
	err     error
}

func (e *errNoManager) Error() string {
	if e.context != "" {
		return fmt.Sprintf("no berth manager answers at %s (context %s); check that it runs, or pick another context with berth context use", e.addr, e.context)
	}
	return fmt.Sprintf("no berth manager answers at %s; start one with `berth server --dev` or run `berth up`", e.addr)
}

func (e *errNoManager) Unwrap() error { return e.err }

// describeError turns err into the one line the user reads after "error: ".
// API errors keep the manager's phrasing (they name the field); callers
// add context only where the manager's words would not say what failed.
func describeError(err error, e *env) string {
	var (
		noMgr     *errNoManager
		apiErr    *api.Error
		verifyErr *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &noMgr):
		return noMgr.Error()
	case isConnRefused(err):
		return (&errNoManager{addr: e.global.addr, context: e.global.contextName, err: err}).Error()
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized:
		return describeUnauthorized(apiErr, e)
	case errors.As(err, &verifyErr):
		return fmt.Sprintf("the manager at %s presents a certificate the CA of %s did not sign (%v): "+
			"give the context the CA of that cluster (a manager's DATA_DIR/pki/ca.crt)", e.global.addr, contextLabel(e), verifyErr.Err)
	case strings.Contains(err.Error(), "remote error: tls:"):
		// crypto/tls does not export the alert a server sends; its text
		// is all there is to tell a refused handshake by.
		return fmt.Sprintf("the manager at %s refused the TLS handshake of %s (%v): the client certificate is missing, "+
			"expired or issued by another cluster's CA", e.global.addr, contextLabel(e), errors.Unwrap(err))
	case errors.As(err, &apiErr) && strings.Contains(apiErr.Message, "HTTP request to an HTTPS server"):
		return fmt.Sprintf("the manager at %s speaks HTTPS: create a context with its address as https://..., "+
			"the cluster CA and a credential (berth context create)", e.global.addr)
	}
	return err.Error()
}

// describeUnauthorized says what credential is missing and how to give
// one; the manager's own words say what it checked.
func describeUnauthorized(err *api.Error, e *env) string {
	hostPort, _ := listenAddr(e.global.addr)
	local := e.global.contextName == "" && !strings.HasPrefix(e.global.addr, "https://") && isLoopbackHost(hostPort)
	switch {
	case local && e.global.credential == "token":
		return fmt.Sprintf("the manager at %s refused the admin token (%s): BERTH_TOKEN is not this cluster's, or the one "+
			"your dev cluster left is stale; restart it (berth server stop, then berth up) for a fresh one", e.global.addr, err.Message)
	case local:
		return fmt.Sprintf("the manager at %s requires a credential (%s): a dev cluster started by you leaves its token "+
			"where the CLI finds it (restart it: berth server stop, then berth up); for another manager, pass "+
			"BERTH_TOKEN=ADMIN_TOKEN (printed when it bootstrapped)", e.global.addr, err.Message)
	case e.global.contextName == "":
		return fmt.Sprintf("the manager at %s requires a credential (%s): create a context with --token or --cert "+
			"(berth context create NAME --addr %s --ca ca.crt --token ADMIN_TOKEN) and select it with berth context use NAME",
			e.global.addr, err.Message, e.global.addr)
	case e.global.credential == "none":
		return fmt.Sprintf("the manager at %s requires a credential (%s), and context %s has none: recreate it with "+
			"--token or --cert and --key (berth context rm %s, berth context create)",
			e.global.addr, err.Message, e.global.contextName, e.global.contextName)
	}
	return fmt.Sprintf("the manager at %s refused the credential of context %s (%s): the token may have been rotated "+
		"or the certificate issued by another cluster; recreate the context (berth context rm %s, berth context create)",
		e.global.addr, e.global.contextName, err.Message, e.global.contextName)
}

// contextLabel names where the client's TLS settings came from.
func contextLabel(e *env) string {
	if e.global.contextName == "" {
		return "this client (no context)"
	}
	return "context " + e.global.contextName
}

// isConnRefused reports whether err means no process listens at the address.
func isConnRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
