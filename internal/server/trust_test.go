package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/types"
)

// joinAs joins as a worker with candidate ID and labels, as an agent does,
// and returns the node's identity.
func joinAs(t *testing.T, s *Server, name, candidate string, labels map[string]string) *pki.Identity {
	t.Helper()
	tok, err := pki.ParseToken(s.WorkerToken())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(candidate, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := api.NewClient(s.ClusterAddr(), api.WithTLS(pki.PinnedTLS(tok.Fingerprint))).Join(context.Background(),
		api.JoinRequest{Token: s.WorkerToken(), Role: "worker", Name: name, CSR: csrPEM, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	id, err := pki.NewIdentity(resp.CAPEM, resp.CertPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func nodeClient(s *Server, id *pki.Identity) *api.Client {
	return api.NewClient(s.ClusterAddr(), api.WithTLS(id.ClientTLS(pki.RoleManager.ServerName())))
}

// TestNodeCannotClaimRoleOrLabels: a worker's register request claiming
// the manager role and labels gets neither; the labels are those it joined
// with, then those `node label` sets, whatever it registers with later.
func TestNodeCannotClaimRoleOrLabels(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	id := joinAs(t, s, "w1", "00000000000000a1", map[string]string{"zone": "a"})
	nc := nodeClient(s, id)
	claim := types.Node{Name: "w1", Address: "127.0.0.1:1", Drivers: []string{"exec"}, Role: types.RoleManager,
		Labels: map[string]string{"zone": "secure", "gpu": "yes"}}
	if _, err := nc.RegisterNode(ctx, claim); err != nil {
		t.Fatal(err)
	}
	check := func(when string, want map[string]string) {
		t.Helper()
		n, err := c.GetNode(ctx, id.NodeID)
		if err != nil {
			t.Fatal(err)
		}
		if n.Role != types.RoleWorker || !maps.Equal(n.Labels, want) || n.Status != types.NodeReady {
			t.Errorf("%s: role %s labels %v status %s; want worker %v ready", when, n.Role, n.Labels, n.Status, want)
		}
	}
	check("after a register claiming more", map[string]string{"zone": "a"})
	if _, err := c.UpdateNodeLabels(ctx, id.NodeID, api.LabelsRequest{Add: map[string]string{"disk": "ssd"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.RegisterNode(ctx, claim); err != nil {
		t.Fatal(err)
	}
	check("after node label and another register", map[string]string{"zone": "a", "disk": "ssd"})

	// Labels at join are checked like node label's.
	tok, _ := pki.ParseToken(s.WorkerToken())
	_, csr, _ := pki.NewKeyAndCSR("00000000000000a2", nil, nil)
	_, err := api.NewClient(s.ClusterAddr(), api.WithTLS(pki.PinnedTLS(tok.Fingerprint))).Join(ctx,
		api.JoinRequest{Token: s.WorkerToken(), Role: "worker", Name: "w2", CSR: csr, Labels: map[string]string{"bad key!": "x"}})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "labels.bad key!") {
		t.Errorf("join with a bad label: %v, want 400 naming labels.bad key!", err)
	}
}

// TestNodeRemoveRevokes: after `node rm --force` the node's certificate is
// refused at the handshake (a new connection) and per request (a
// connection opened before), even after a token rotation; joining again
// with a new token gives a new node ID, never the revoked one.
func TestNodeRemoveRevokes(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	id := joinAs(t, s, "w1", "00000000000000b1", nil)
	old := nodeClient(s, id)
	if _, err := old.RegisterNode(ctx, types.Node{Name: "w1", Address: "127.0.0.1:1", Drivers: []string{"exec"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveNode(ctx, id.NodeID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RotateToken(ctx, "worker"); err != nil {
		t.Fatal(err)
	}
	reg := types.Node{Name: "w1", Address: "127.0.0.1:1", Drivers: []string{"exec"}}
	var ae *api.Error
	if _, err := old.RegisterNode(ctx, reg); !errors.As(err, &ae) || ae.Status != http.StatusForbidden || !strings.Contains(ae.Message, "revoked") {
		t.Errorf("register on a connection opened before the removal: %v, want 403 saying revoked", err)
	}
	if _, err := nodeClient(s, id).RegisterNode(ctx, reg); err == nil || errors.As(err, &ae) {
		t.Errorf("register on a new connection: %v, want the handshake refused", err)
	}
	if _, err := c.GetNode(ctx, id.NodeID); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("the removed node: %v, want not found", err)
	}
	again := joinAs(t, s, "w1", id.NodeID, nil)
	if again.NodeID == id.NodeID {
		t.Errorf("joining again reused the revoked node ID %s", id.NodeID)
	}
	if _, err := nodeClient(s, again).RegisterNode(ctx, reg); err != nil {
		t.Errorf("the node joined again under a new ID cannot register: %v", err)
	}
}

// TestRenewCertificate: a node renews its certificate over its mutual-TLS
// connection: same ID and role, a later expiry; never another node's. The
// manager renews its own before a third of the lifetime is left.
func TestRenewCertificate(t *testing.T) {
	s, _ := startServerWith(t, func(c *Config) { c.CertTTL = 12 * time.Second })
	ctx := context.Background()
	id := joinAs(t, s, "w1", "00000000000000c1", nil)
	nc := nodeClient(s, id)
	csr, err := id.RenewalCSR()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // certificates count whole seconds
	resp, err := nc.RenewCert(ctx, id.NodeID, csr)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := id.Renewed(t.TempDir(), resp.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.NodeID != id.NodeID || renewed.Role != pki.RoleWorker || !renewed.Cert.Leaf.NotAfter.After(id.Cert.Leaf.NotAfter) {
		t.Errorf("renewed: %s %s until %s; was until %s", renewed.Role, renewed.NodeID, renewed.Cert.Leaf.NotAfter, id.Cert.Leaf.NotAfter)
	}
	var ae *api.Error
	if _, err := nc.RenewCert(ctx, "00000000000000c2", csr); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Errorf("renew for another node: %v, want 403", err)
	}
	first := s.creds.live.Identity().Cert.Leaf
	waitFor(t, 20*time.Second, "the manager to renew its certificate", func() bool {
		return s.creds.live.Identity().Cert.Leaf.SerialNumber.Cmp(first.SerialNumber) != 0
	})
	if _, err := nodeClient(s, renewed).Heartbeat(ctx, id.NodeID); err != nil && !errors.Is(err, api.ErrNotFound) {
		t.Errorf("the renewed node against the renewed manager: %v", err)
	}
}

// TestSecretDigestIsKeyed: what Raft keeps of a secret is sealed content
// and a keyed digest, never the bare SHA-256 of the plaintext.
func TestSecretDigestIsKeyed(t *testing.T) {
	s, c := startServer(t)
	if _, err := c.SubmitApp(context.Background(), validApp()); err != nil {
		t.Fatal(err)
	}
	stored := s.store.View().App("shop").Secrets["key"]
	bare := sha256.Sum256([]byte("s3cret"))
	if stored.Digest == "" || stored.Digest == hex.EncodeToString(bare[:]) {
		t.Errorf("stored digest %q is empty or the bare SHA-256", stored.Digest)
	}
	if strings.Contains(string(stored.Data), "s3cret") {
		t.Error("the secret is stored in plaintext")
	}
}
