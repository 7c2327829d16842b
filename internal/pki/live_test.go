package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLiveFollowsRenewal: configurations made from a Live present the
// identity current at each handshake, so a renewed certificate is used on
// the next connection without rebuilding anything.
func TestLiveFollowsRenewal(t *testing.T) {
	ca := newTestCA(t, "c1")
	server := NewLive(issue(t, ca, "m1", RoleManager))
	client := NewLive(issue(t, ca, "w1", RoleWorker))
	srvCfg := server.ServerTLS(tls.RequireAndVerifyClientCert, nil)
	cliCfg := client.ClientTLS(RoleManager.ServerName())
	// seen is the serial of the client certificate the server saw.
	seen := func() string {
		res := handshake(t, srvCfg, cliCfg)
		checkOK(t, res)
		return res.serverState.PeerCertificates[0].SerialNumber.String()
	}
	before := seen()
	next := renewIn(t, ca, client.Identity())
	if err := client.Replace(next); err != nil {
		t.Fatal(err)
	}
	after := seen()
	if before == after || after != next.Cert.Leaf.SerialNumber.String() {
		t.Errorf("the server saw serial %s then %s; want the renewed %s", before, after, next.Cert.Leaf.SerialNumber)
	}
}

// renewIn renews id's certificate with ca, as a manager does for a node.
func renewIn(t *testing.T, ca *CA, id *Identity) *Identity {
	t.Helper()
	csr, err := id.RenewalCSR()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignCSR(csr, id.NodeID, id.Role, time.Now(), testCertTTL)
	if err != nil {
		t.Fatal(err)
	}
	next, err := id.Renewed(t.TempDir(), certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if string(next.KeyPEM) != string(id.KeyPEM) {
		t.Error("renewal changed the key; only the certificate should change")
	}
	return next
}

func TestLiveReplaceRefusesAnotherIdentity(t *testing.T) {
	ca, other := newTestCA(t, "c1"), newTestCA(t, "c2")
	live := NewLive(issue(t, ca, "w1", RoleWorker))
	cases := []struct {
		name string
		next *Identity
	}{
		{"another node", issue(t, ca, "w2", RoleWorker)},
		{"another role", issue(t, ca, "w1", RoleManager)},
		{"another CA", issue(t, other, "w1", RoleWorker)},
	}
	for _, tc := range cases {
		if err := live.Replace(tc.next); err == nil {
			t.Errorf("%s: replaced", tc.name)
		}
	}
	if live.Identity().NodeID != "w1" {
		t.Error("a refused replacement changed the identity")
	}
}

// TestPeerCheckRefusesAtHandshake: a revoked peer's valid certificate is
// refused in the handshake, on a listener for nodes and on Raft's.
func TestPeerCheckRefusesAtHandshake(t *testing.T) {
	ca := newTestCA(t, "c1")
	revoked := errors.New("node w1 is revoked")
	check := func(id string, _ Role) error {
		if id == "w1" || id == "m2" {
			return revoked
		}
		return nil
	}
	server := NewLive(issue(t, ca, "m1", RoleManager))
	cases := []struct {
		name   string
		server *tls.Config
		client *Identity
		ok     bool
	}{
		{"node port, allowed", server.ServerTLS(tls.VerifyClientCertIfGiven, check), issue(t, ca, "w0", RoleWorker), true},
		{"node port, revoked", server.ServerTLS(tls.VerifyClientCertIfGiven, check), issue(t, ca, "w1", RoleWorker), false},
		{"raft port, allowed", server.ServerTLSFor(check, RoleManager), issue(t, ca, "m3", RoleManager), true},
		{"raft port, revoked", server.ServerTLSFor(check, RoleManager), issue(t, ca, "m2", RoleManager), false},
	}
	for _, tc := range cases {
		res := handshake(t, tc.server, tc.client.ClientTLS(RoleManager.ServerName()))
		switch {
		case tc.ok && (res.serverErr != nil || res.clientErr != nil):
			t.Errorf("%s: server %v, client %v", tc.name, res.serverErr, res.clientErr)
		case !tc.ok && (!errors.Is(res.serverErr, revoked) || res.clientErr == nil || !strings.Contains(res.clientErr.Error(), "bad certificate")):
			t.Errorf("%s: server %v, client %v; want the check's refusal, a bad-certificate alert", tc.name, res.serverErr, res.clientErr)
		}
	}
}

func TestRenewAt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := func(ttl time.Duration) *x509.Certificate {
		return &x509.Certificate{NotBefore: now.Add(-clockSkew), NotAfter: now.Add(ttl)}
	}
	cases := []struct {
		ttl   time.Duration
		at    time.Duration // from issue
		renew bool
	}{
		{90 * 24 * time.Hour, 59 * 24 * time.Hour, false},
		{90 * 24 * time.Hour, 61 * 24 * time.Hour, true},
		{30 * time.Second, 19 * time.Second, false}, // the backdating does not count
		{30 * time.Second, 21 * time.Second, true},
	}
	for _, tc := range cases {
		if got := NeedsRenewal(cert(tc.ttl), now.Add(tc.at)); got != tc.renew {
			t.Errorf("lifetime %s, %s after issue: renew %v, want %v", tc.ttl, tc.at, got, tc.renew)
		}
	}
}

// TestClientResumesAndStillChecks: a client's second connection resumes
// its TLS session (no certificate chains, no signatures), and a resumed
// connection is still refused once the peer is revoked: the check runs on
// every handshake, resumed or not.
func TestClientResumesAndStillChecks(t *testing.T) {
	ca := newTestCA(t, "c1")
	var revokedNow atomic.Bool
	revoked := errors.New("node w1 is revoked")
	check := func(id string, _ Role) error {
		if revokedNow.Load() {
			return revoked
		}
		return nil
	}
	srvCfg := NewLive(issue(t, ca, "m1", RoleManager)).ServerTLS(tls.VerifyClientCertIfGiven, check)
	cliCfg := NewLive(issue(t, ca, "w1", RoleWorker)).ClientTLS(RoleManager.ServerName())
	steps := []struct {
		name    string
		revoke  bool
		ok      bool
		resumed bool
	}{
		{"first connection", false, true, false},
		{"second connection", false, true, true},
		{"after revocation", true, false, false},
	}
	for _, st := range steps {
		revokedNow.Store(st.revoke)
		res := handshake(t, srvCfg, cliCfg)
		switch {
		case st.ok && (res.serverErr != nil || res.clientErr != nil):
			t.Fatalf("%s: server %v, client %v", st.name, res.serverErr, res.clientErr)
		case st.ok && res.serverState.DidResume != st.resumed:
			t.Errorf("%s: resumed %v, want %v", st.name, res.serverState.DidResume, st.resumed)
		case st.ok && res.serverState.PeerCertificates[0].Subject.CommonName != "w1":
			t.Errorf("%s: the server saw %q, want w1", st.name, res.serverState.PeerCertificates[0].Subject.CommonName)
		case !st.ok && !errors.Is(res.serverErr, revoked):
			t.Errorf("%s: server %v, client %v; want the check's refusal", st.name, res.serverErr, res.clientErr)
		}
	}
}
