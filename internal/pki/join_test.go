package pki

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// joinRequest and joinResponse are a minimal stand-in for the server's join
// endpoint, enough to run the whole trust model over real connections.
type joinRequest struct {
	Token string
	CSR   []byte
}

type joinResponse struct {
	CA, Cert []byte
	Err      string
}

// TestJoinFlow runs the join described in doc.go end to end: a worker with
// only a token pins the CA, proves the token, gets a certificate, saves it,
// and then speaks mutual TLS with the manager.
func TestJoinFlow(t *testing.T) {
	ca := newTestCA(t, "c1")
	manager := issue(t, ca, "m1", RoleManager)
	token, err := NewToken(ca.Fingerprint(), RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseToken(token)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[Role]string{RoleWorker: HashToken(tok.Secret)} // what Raft would hold

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() { served <- serveJoin(ln, manager.ServerTLS(tls.VerifyClientCertIfGiven), ca, stored) }()

	// The joining worker: it has the token and nothing else.
	keyPEM, csrPEM, err := NewKeyAndCSR("", []net.IP{net.ParseIP("127.0.1.5")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), PinnedTLS(tok.Fingerprint))
	if err != nil {
		t.Fatalf("pinned dial: %v", err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var resp joinResponse
	if err := json.NewEncoder(conn).Encode(joinRequest{Token: token, CSR: csrPEM}); err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := <-served; err != nil || resp.Err != "" {
		t.Fatalf("join refused: %v %s", err, resp.Err)
	}

	dir := filepath.Join(t.TempDir(), "pki")
	if err := SaveIdentity(dir, resp.CA, resp.Cert, keyPEM); err != nil {
		t.Fatal(err)
	}
	worker, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if worker.Role != RoleWorker || worker.NodeID != "node-1" {
		t.Fatalf("joined as %s %s, want worker node-1", worker.Role, worker.NodeID)
	}
	res := handshake(t, manager.ServerTLS(tls.RequireAndVerifyClientCert), worker.ClientTLS(RoleManager.ServerName()))
	checkOK(t, res)
}

// serveJoin accepts one join: it checks the token against the stored hash
// for the token's role and signs the CSR with that role.
func serveJoin(ln net.Listener, cfg *tls.Config, ca *CA, stored map[Role]string) error {
	raw, err := ln.Accept()
	if err != nil {
		return err
	}
	conn := tls.Server(raw, cfg)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var req joinRequest
	if err := json.NewDecoder(conn).Decode(&req); err != nil {
		return err
	}
	resp := joinResponse{CA: ca.CertPEM}
	if cert, err := admit(req, ca, stored); err != nil {
		resp.Err = err.Error()
	} else {
		resp.Cert = cert
	}
	return json.NewEncoder(conn).Encode(resp)
}

func admit(req joinRequest, ca *CA, stored map[Role]string) ([]byte, error) {
	tok, err := ParseToken(req.Token)
	if err != nil {
		return nil, err
	}
	if err := tok.Verify(ca.Fingerprint(), stored[tok.Role]); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	return ca.SignCSR(req.CSR, "node-1", tok.Role, time.Now(), testCertTTL)
}
