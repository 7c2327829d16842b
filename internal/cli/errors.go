package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
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
		engErr    *errEngine
	)
	switch {
	case errors.As(err, &noMgr):
		return noMgr.Error()
	case errors.As(err, &engErr): // before isConnRefused: a refused engine socket is no manager's
		return err.Error() // its own sentence, after what needed the engine
	case isConnRefused(err):
		return (&errNoManager{addr: e.global.addr, context: e.global.contextName, err: err}).Error()
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized:
		return describeUnauthorized(apiErr, e)
	case errors.As(err, &verifyErr):
		return describeUnverified(verifyErr, e)
	case isRefusedHandshake(err, e.global.addr):
		return describeRefusedHandshake(err, e)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// net/http's words, the only sign of it.
		return fmt.Sprintf("the manager at %s speaks plain HTTP (an open loopback API): use its address as http://..., "+
			"with no CA or credential", e.global.addr)
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
	local := e.global.contextName == "" && !strings.HasPrefix(e.global.addr, "https://") && api.IsLoopback(hostPort)
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

// isRefusedHandshake reports whether err is a manager refusing the client's
// TLS handshake: its alert, or (TLS 1.3 verifies the client certificate
// after the client thinks the handshake done) the connection reset or
// closed instead, when the request raced the alert (the client's retry
// of a reset then meets the closed connection).
func isRefusedHandshake(err error, addr string) bool {
	if _, ok := api.PeerAlert(err); ok {
		return true
	}
	return strings.HasPrefix(addr, "https://") && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed))
}

// describeRefusedHandshake says it in one sentence: the alert's own words
// where there is one, never the HTTP client's internals (such as
// "readLoopPeekFailLocked") around them.
func describeRefusedHandshake(err error, e *env) string {
	said := ""
	if alert, ok := api.PeerAlert(err); ok {
		said = fmt.Sprintf(" (it said: %s)", alert)
	}
	return fmt.Sprintf("the manager at %s refused the TLS handshake of %s%s: the client certificate is missing, "+
		"expired or issued by another cluster's CA; give the context a certificate of this cluster or an admin token "+
		"(berth context rm, berth context create)", e.global.addr, contextLabel(e), said)
}

// describeUnverified says why the manager's certificate was not trusted, in
// one sentence without crypto/x509's text.
func describeUnverified(err *tls.CertificateVerificationError, e *env) string {
	var (
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
	)
	switch {
	case errors.As(err.Err, &hostErr):
		return fmt.Sprintf("the manager at %s presents a certificate that is not a berth manager's (it names %s): "+
			"check the address, or that it runs berth", e.global.addr, certNames(hostErr.Certificate))
	case errors.As(err.Err, &invalidErr) && invalidErr.Reason == x509.Expired:
		return fmt.Sprintf("the manager at %s presents a certificate that has expired or is not valid yet: "+
			"check the clocks of this machine and the manager", e.global.addr)
	}
	return fmt.Sprintf("the manager at %s presents a certificate the CA of %s did not sign: "+
		"give the context the CA of that cluster (a manager's DATA_DIR/pki/ca.crt)", e.global.addr, contextLabel(e))
}

// certNames lists what a certificate is for: its DNS names, else its
// common name.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "nothing"
	}
	if len(c.DNSNames) > 0 {
		return strings.Join(c.DNSNames, ", ")
	}
	return c.Subject.CommonName
}
