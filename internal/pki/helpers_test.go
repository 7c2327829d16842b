package pki

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// testCertTTL is long enough for any test run; handshakes use the real clock.
const testCertTTL = time.Hour

func newTestCA(t *testing.T, clusterID string) *CA {
	t.Helper()
	ca, err := NewCA(clusterID, time.Now())
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

// issue runs a node's side of joining against ca in memory: key and CSR,
// signature, identity.
func issue(t *testing.T, ca *CA, nodeID string, role Role) *Identity {
	t.Helper()
	keyPEM, csrPEM, err := NewKeyAndCSR(nodeID, []net.IP{net.ParseIP("127.0.0.1")}, nil)
	if err != nil {
		t.Fatalf("NewKeyAndCSR: %v", err)
	}
	certPEM, err := ca.SignCSR(csrPEM, nodeID, role, time.Now(), testCertTTL)
	if err != nil {
		t.Fatalf("SignCSR: %v", err)
	}
	id, err := NewIdentity(ca.CertPEM, certPEM, keyPEM)
	if err != nil {
		t.Fatalf("NewIdentity: %v", err)
	}
	return id
}

// handshakeResult is what each side of one TLS connection saw.
type handshakeResult struct {
	serverErr, clientErr error
	serverState          tls.ConnectionState
}

// handshake connects a client to a server over 127.0.0.1 and exchanges one
// byte from server to client. The byte matters: in TLS 1.3 the client
// finishes its handshake before the server has checked the client's
// certificate, so a refusal reaches the client only on its first read.
func handshake(t *testing.T, server, client *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()

	type serverSide struct {
		err   error
		state tls.ConnectionState
	}
	done := make(chan serverSide, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- serverSide{err: err}
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(conn, server)
		if err := tc.Handshake(); err != nil {
			done <- serverSide{err: err}
			return
		}
		_, err = tc.Write([]byte{1})
		done <- serverSide{err: err, state: tc.ConnectionState()}
	}()

	conn, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(conn, client)
	clientErr := tc.Handshake()
	if clientErr == nil {
		_, clientErr = io.ReadFull(tc, make([]byte, 1))
	}
	conn.Close()
	s := <-done
	return handshakeResult{serverErr: s.err, clientErr: clientErr, serverState: s.state}
}
