package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/types"
)

func TestJoinRefusals(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	tokens, err := c.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := pki.ParseToken(tokens.Worker)
	join := func(token, role string) error {
		_, csr, err := pki.NewKeyAndCSR("0123456789abcdef", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = api.NewClient(s.ClusterAddr(), api.WithTLS(pki.PinnedTLS(tok.Fingerprint))).Join(ctx,
			api.JoinRequest{Token: token, Role: role, Name: "x", CSR: csr})
		return err
	}
	forged := tokens.Worker[:len(tokens.Worker)-4] + "aaaa"
	cases := []struct {
		name, token, role string
		status            int
		msg               string
	}{
		{"forged secret", forged, "worker", 403, "join refused"},
		{"worker token as manager", tokens.Worker, "manager", 400, "worker"},
		{"garbage", "hello", "worker", 400, "token"},
		{"admin role", tokens.Worker, "admin", 400, "role"},
	}
	for _, tc := range cases {
		var ae *api.Error
		if err := join(tc.token, tc.role); !errors.As(err, &ae) || ae.Status != tc.status || !strings.Contains(ae.Message, tc.msg) {
			t.Errorf("%s: err %v, want %d mentioning %q", tc.name, err, tc.status, tc.msg)
		}
	}
	// Rotation: the old token stops working at once, the new one works.
	rotated, err := c.RotateToken(ctx, "worker")
	if err != nil || rotated.Worker == tokens.Worker || rotated.Manager != tokens.Manager {
		t.Fatalf("rotate: %+v %v", rotated, err)
	}
	var ae *api.Error
	if err := join(tokens.Worker, "worker"); !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("old token after rotation: %v", err)
	}
	if err := join(rotated.Worker, "worker"); err != nil {
		t.Fatalf("new token: %v", err)
	}
}

func TestClusterPortNeedsNodeCertificate(t *testing.T) {
	s, _ := startServer(t)
	ctx := context.Background()
	tok, _ := pki.ParseToken(s.WorkerToken())

	// Pinned TLS but no client certificate: the agent routes refuse.
	anon := api.NewClient(s.ClusterAddr(), api.WithTLS(pki.PinnedTLS(tok.Fingerprint)))
	var ae *api.Error
	if _, err := anon.Heartbeat(ctx, "n"); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("heartbeat without a certificate: %v", err)
	}
	// A node cannot act for another node.
	nc, _ := joinNode(t, s, "n1")
	if _, err := nc.RegisterNode(ctx, types.Node{Name: "n1", Address: "127.0.0.1:1", Drivers: []string{"exec"}}); err != nil {
		t.Fatal(err)
	}
	_, other := joinNode(t, s, "n2")
	if _, err := nc.Heartbeat(ctx, other); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("heartbeat for another node: %v", err)
	}
	// A certificate from another CA does not get through the handshake.
	foreign := foreignIdentity(t)
	fc := api.NewClient(s.ClusterAddr(), api.WithTLS(&tls.Config{
		Certificates: []tls.Certificate{foreign.Cert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, //nolint:gosec // the test is the server refusing us
	}))
	if _, _, err := fc.NodeTasks(ctx, foreign.NodeID, api.QueryOptions{}); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
}

func TestSecureAPINeedsCredential(t *testing.T) {
	s, err := New(Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", SecureAPI: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	admin := s.AdminToken()
	if admin == "" {
		t.Fatal("no admin token at bootstrap")
	}
	caTLS, err := pki.CAClientTLS(s.creds.live.Identity().CAPEM, pki.RoleManager.ServerName())
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, err := s.WaitWorkerToken(wctx); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		opts   []api.ClientOption
		status int
	}{
		{"no credential", []api.ClientOption{api.WithTLS(caTLS)}, http.StatusUnauthorized},
		{"wrong token", []api.ClientOption{api.WithTLS(caTLS), api.WithToken("BERTHADM-aaaa")}, http.StatusUnauthorized},
		{"admin token", []api.ClientOption{api.WithTLS(caTLS), api.WithToken(admin)}, 0},
	}
	for _, tc := range cases {
		_, err := api.NewClient(s.Addr(), tc.opts...).ListApps(ctx)
		var ae *api.Error
		switch {
		case tc.status == 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.status != 0 && (!errors.As(err, &ae) || ae.Status != tc.status || !strings.Contains(ae.Message, "token")):
			t.Errorf("%s: err %v, want %d naming the credential", tc.name, err, tc.status)
		}
	}
	// Plain HTTP gets nowhere.
	if _, err := api.NewClient("http://" + s.Addr()).ListApps(ctx); err == nil {
		t.Error("plain HTTP accepted on a secure API")
	}
}

// foreignIdentity is a manager identity from a CA of another cluster.
func foreignIdentity(t *testing.T) *pki.Identity {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("other", now)
	if err != nil {
		t.Fatal(err)
	}
	key, csr, err := pki.NewKeyAndCSR("fedcba9876543210", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.SignCSR(csr, "fedcba9876543210", pki.RoleManager, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := pki.NewIdentity(ca.CertPEM, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
