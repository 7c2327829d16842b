package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// refusalTimeout bounds how long a refused agent may take to give up: it
// must exit with an error, not retry forever.
const refusalTimeout = 30 * time.Second

// TestSecurity: tokens that are wrong, for another role, for another
// cluster or rotated away are refused with a clear error; a certificate
// from another CA cannot talk to the cluster port, even naming a real node.
func TestSecurity(t *testing.T) {
	c := start(t, harness.Options{Agents: harness.Zones("a")})
	leader := c.Leader(t, 10*time.Second)
	worker := c.Token(t, leader, "worker")
	parsed, err := pki.ParseToken(worker)
	if err != nil {
		t.Fatal(err)
	}

	forgedSecret, err := pki.NewToken(parsed.Fingerprint, pki.RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	foreignCA, err := pki.NewCA("foreign", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	otherCluster, err := pki.NewToken(foreignCA.Fingerprint(), pki.RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name, token string
		want        []string // any of these, in the error output
	}{
		{"unknown secret", forgedSecret, []string{"token"}},
		{"manager token for an agent", c.Token(t, leader, "manager"), []string{"manager", "token"}},
		{"another cluster's token", otherCluster, []string{"CA", "fingerprint", "another cluster"}},
		{"not a token", "hello", []string{"token"}},
	}
	for i, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			expectRefused(t, c, leader, tc.token, "bad"+string(rune('a'+i)), tc.want)
		})
	}

	t.Run("rotated token", func(t *testing.T) {
		c.MustRun(t, leader, "token", "worker", "--rotate")
		rotated := c.Token(t, leader, "worker")
		if rotated == worker {
			t.Fatal("the worker token is unchanged after --rotate")
		}
		expectRefused(t, c, leader, worker, "stale", []string{"token"})
		c.JoinAgent(t, leader, rotated, harness.AgentSpec{Name: "fresh"})
		harness.WaitFor(t, 30*time.Second, "the agent with the new token ready", c.ExpectNodesReady(leader, 2))
	})

	t.Run("certificate from another CA", func(t *testing.T) {
		real, err := c.Agents[0].Identity()
		if err != nil {
			t.Fatalf("load the identity agent a1 was issued: %v", err)
		}
		serverCA := real.Pool
		// The same call with a1's own certificate works: the refusals below
		// are about the certificate, nothing else.
		if err := heartbeat(leader, real.NodeID, real.ClientTLS(pki.RoleManager.ServerName())); err != nil {
			t.Fatalf("a1's own certificate does not work either, so this test proves nothing: %v", err)
		}
		foreign := foreignCert(t, foreignCA, real.NodeID)
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: serverCA, ServerName: pki.RoleManager.ServerName()}
		present(cfg, foreign)
		// The handshake itself fails: the server verifies a certificate it
		// is given, even on a port that admits nodes without one.
		err = heartbeat(leader, real.NodeID, cfg)
		var apiErr *api.Error
		if err == nil || errors.As(err, &apiErr) {
			t.Fatalf("a heartbeat with a certificate from another CA passed the TLS handshake: %v", err)
		}
		t.Logf("a certificate from another CA: refused: %v", err)
		noCert := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: serverCA, ServerName: pki.RoleManager.ServerName()}
		expectUnauthenticated(t, "no client certificate", heartbeat(leader, real.NodeID, noCert))
	})

	t.Run("raft port and a certificate from another CA", func(t *testing.T) {
		real, err := leader.Identity()
		if err != nil {
			t.Fatalf("load the leader's identity: %v", err)
		}
		// A peer with the cluster's certificate gets a connection the
		// server keeps open, waiting for a Raft RPC.
		if err := raftSession(leader.RaftAddr, real.ClientTLS(pki.RoleManager.ServerName())); !isTimeout(err) {
			t.Fatalf("a manager's own certificate is not kept waiting on the Raft port, so this test proves nothing: %v", err)
		}
		cfg := real.ClientTLS(pki.RoleManager.ServerName())
		present(cfg, foreignManagerCert(t, foreignCA, real.NodeID))
		err = raftSession(leader.RaftAddr, cfg)
		if err == nil || isTimeout(err) {
			t.Fatalf("the Raft port kept a connection with a foreign certificate open (%v); want it refused", err)
		}
		t.Logf("refused: %v", err)
	})

	t.Run("unauthenticated API call", func(t *testing.T) {
		// Loopback proves nothing (every local user reaches it): the API
		// and /metrics need the admin token there too.
		for _, path := range []string{"/v1/apps", "/v1/cluster/tokens", "/metrics"} {
			for _, tok := range []string{"", "BERTHADM-not-the-token", leader.Token()} {
				req, _ := http.NewRequest(http.MethodGet, leader.URL()+path, nil)
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				want := http.StatusUnauthorized
				if tok == leader.Token() {
					want = http.StatusOK
				}
				if resp.StatusCode != want {
					t.Errorf("GET %s with token %q: %d, want %d", path, tok, resp.StatusCode, want)
				}
			}
		}
	})
}

// expectRefused runs an agent with token and checks that it exits
// non-zero, promptly, with an error that mentions one of want.
func expectRefused(t *testing.T, c *harness.Cluster, m *harness.Manager, token, name string, want []string) {
	t.Helper()
	r, err := c.TryJoinAgent(t, m, token, name, refusalTimeout)
	if err != nil {
		t.Fatalf("the agent was not refused: %v", err)
	}
	if r.Code == 0 {
		t.Fatalf("the agent exited 0: %s", r)
	}
	out := strings.ToLower(r.Stderr)
	for _, w := range want {
		if strings.Contains(out, strings.ToLower(w)) {
			t.Logf("refused: %s", lastLine(r.Stderr))
			return
		}
	}
	t.Errorf("the agent's error does not mention any of %q: %s", want, r)
}

// expectUnauthenticated checks that a call made with what failed: the TLS
// handshake refused it, or the server answered 401 (the cluster port admits
// nodes without a certificate, to join, and refuses them per request).
func expectUnauthenticated(t *testing.T, what string, err error) {
	t.Helper()
	var apiErr *api.Error
	switch {
	case err == nil:
		t.Errorf("a heartbeat with %s was accepted", what)
	case errors.As(err, &apiErr) && apiErr.Status != http.StatusUnauthorized:
		t.Errorf("a heartbeat with %s got %d %q; want 401 or a refused handshake", what, apiErr.Status, apiErr.Message)
	default:
		t.Logf("%s: refused: %v", what, err)
	}
}

// heartbeat sends one heartbeat for nodeID to m's cluster port with cfg.
func heartbeat(m *harness.Manager, nodeID string, cfg *tls.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := api.NewClient("https://"+m.ClusterAddr, api.WithTLS(cfg)).Heartbeat(ctx, nodeID)
	return err
}

// present makes cfg send cert whatever CAs the server asks for: with
// Certificates alone, Go's client sends no certificate at all when the
// server names CAs that did not sign it, and the test would only prove
// that a missing certificate is refused.
func present(cfg *tls.Config, cert tls.Certificate) {
	cfg.Certificates = nil
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
}

// raftSession connects to a Raft port with cfg and reads: a server that
// refuses the client certificate ends the connection with an alert (in TLS
// 1.3 it arrives on the first read); one that accepts it waits for an RPC,
// and the read times out.
func raftSession(addr string, cfg *tls.Config) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// foreignManagerCert is a manager certificate for nodeID, signed by ca.
func foreignManagerCert(t *testing.T, ca *pki.CA, nodeID string) tls.Certificate {
	t.Helper()
	return signedBy(t, ca, nodeID, pki.RoleManager)
}

// foreignCert is a worker certificate for nodeID, signed by ca.
func foreignCert(t *testing.T, ca *pki.CA, nodeID string) tls.Certificate {
	t.Helper()
	return signedBy(t, ca, nodeID, pki.RoleWorker)
}

// signedBy is a certificate for nodeID with role, signed by ca.
func signedBy(t *testing.T, ca *pki.CA, nodeID string, role pki.Role) tls.Certificate {
	t.Helper()
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(nodeID, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignCSR(csrPEM, nodeID, role, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(append(certPEM, ca.CertPEM...), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
