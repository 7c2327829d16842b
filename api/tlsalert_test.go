package api

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestPeerAlert(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		want   string
		wantOK bool
	}{
		{"nil", nil, "", false},
		{"no alert", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), "", false},
		{"wrapped by the HTTP client", errors.New(`Post "https://m:7702/v1/nodes/register": remote error: tls: bad certificate`), "bad certificate", true},
		{"wrapped with %w", fmt.Errorf("heartbeat: %w", errors.New("readLoopPeekFailLocked: remote error: tls: certificate required")), "certificate required", true},
		{"a local verification failure is no alert", &tls.CertificateVerificationError{Err: errors.New("x509: certificate signed by unknown authority")}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := PeerAlert(tt.err)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("PeerAlert(%v) = %q, %v; want %q, %v", tt.err, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// A real handshake that the server refuses gives the client an error that
// PeerAlert reads, so the text it parses is crypto/tls's own.
func TestPeerAlertRealHandshake(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refusal is the point
	srv.StartTLS()
	defer srv.Close()
	conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err == nil {
		// TLS 1.3: the server checks the client's certificate after the
		// client finished; its alert arrives on the first read.
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if got, ok := PeerAlert(err); !ok || got != "certificate required" {
		t.Fatalf("PeerAlert(%v) = %q, %v; want the server's \"certificate required\"", err, got, ok)
	}
}
