package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
)

// TestRefusedHandshakeSentence: a refused TLS handshake reads as one
// sentence naming the context and what to do, without the HTTP client's
// internals, whether the alert arrived or the connection was reset.
func TestRefusedHandshakeSentence(t *testing.T) {
	alert := &url.Error{Op: "Get", URL: "https://10.0.0.5:7700/v1/apps",
		Err: fmt.Errorf("readLoopPeekFailLocked: %w", errors.New("remote error: tls: unknown certificate authority"))}
	reset := &url.Error{Op: "Get", URL: "https://10.0.0.5:7700/v1/apps",
		Err: fmt.Errorf("read tcp 127.0.0.1:5->10.0.0.5:7700: %w", syscall.ECONNRESET)}
	closed := &url.Error{Op: "Get", URL: "https://10.0.0.5:7700/v1/apps",
		Err: fmt.Errorf("read tcp 127.0.0.1:5->10.0.0.5:7700: %w", net.ErrClosed)}
	const want = "the manager at https://10.0.0.5:7700 refused the TLS handshake of context prod"
	tests := []struct {
		name, suffix string
		err          error
	}{
		{"alert", " (it said: unknown certificate authority): the client certificate is missing", alert},
		{"reset", ": the client certificate is missing", reset},
		{"closed after a reset", ": the client certificate is missing", closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.e.global.addr, h.e.global.contextName = "https://10.0.0.5:7700", "prod"
			got := describeError(tt.err, h.e)
			if !strings.HasPrefix(got, want+tt.suffix) {
				t.Fatalf("got  %q\nwant %q...", got, want+tt.suffix)
			}
			for _, internal := range []string{"readLoop", "Locked", "read tcp", "remote error"} {
				if strings.Contains(got, internal) {
					t.Errorf("sentence shows %q: %s", internal, got)
				}
			}
			if strings.Count(got, ". ") > 0 || strings.Contains(got, "\\n") {
				t.Errorf("more than one sentence: %s", got)
			}
		})
	}
}

// TestHTTPSToPlainHTTPManager: https:// to a loopback manager that speaks
// plain HTTP says so in one sentence.
func TestHTTPSToPlainHTTPManager(t *testing.T) {
	h := newHarness(t)
	h.e.global.addr = "https://127.0.0.1:7700"
	err := &url.Error{Op: "Get", URL: "https://127.0.0.1:7700/v1/apps", Err: errors.New("http: server gave HTTP response to HTTPS client")}
	got := describeError(err, h.e)
	if want := "the manager at https://127.0.0.1:7700 speaks plain HTTP (an open loopback API): use its address as http://..."; !strings.HasPrefix(got, want) {
		t.Fatalf("got %q, want %q...", got, want)
	}
}

// TestUnverifiedManagerSentence: each reason a manager's certificate is not
// trusted reads as its own sentence, without crypto/x509's text.
func TestUnverifiedManagerSentence(t *testing.T) {
	cert := &x509.Certificate{DNSNames: []string{"example.org"}}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"other CA", x509.UnknownAuthorityError{Cert: cert}, "presents a certificate the CA of context prod did not sign: give the context the CA"},
		{"not a manager", x509.HostnameError{Certificate: cert, Host: "manager.berth"}, "presents a certificate that is not a berth manager's (it names example.org)"},
		{"expired", x509.CertificateInvalidError{Cert: cert, Reason: x509.Expired}, "has expired or is not valid yet: check the clocks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.e.global.addr, h.e.global.contextName = "https://10.0.0.5:7700", "prod"
			err := &url.Error{Op: "Get", URL: "https://10.0.0.5:7700/v1/apps", Err: &tls.CertificateVerificationError{Err: tt.err}}
			got := describeError(err, h.e)
			if !strings.Contains(got, tt.want) || strings.Contains(got, "x509") {
				t.Fatalf("got %q\nwant it to contain %q and no x509 text", got, tt.want)
			}
		})
	}
}
