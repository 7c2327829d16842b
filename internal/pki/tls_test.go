package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t, "c1")
	manager := issue(t, ca, "m1", RoleManager)
	manager2 := issue(t, ca, "m2", RoleManager)
	worker := issue(t, ca, "w1", RoleWorker)
	foreign := issue(t, newTestCA(t, "c2"), "intruder", RoleWorker)
	noCert, err := CAClientTLS(ca.CertPEM, RoleManager.ServerName())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name          string
		server        *tls.Config
		client        *tls.Config
		wantPeer      string // node ID the server sees; "" when none
		wantRole      Role
		wantServerErr string // "" means the handshake must succeed
		wantClientErr string
	}{
		{
			name:     "worker dials manager",
			server:   manager.ServerTLS(tls.RequireAndVerifyClientCert),
			client:   worker.ClientTLS(RoleManager.ServerName()),
			wantPeer: "w1", wantRole: RoleWorker,
		},
		{
			name:     "manager dials manager-only listener",
			server:   manager.ServerTLSFor(RoleManager),
			client:   manager2.ClientTLS(RoleManager.ServerName()),
			wantPeer: "m2", wantRole: RoleManager,
		},
		{
			name:          "worker dials manager-only listener",
			server:        manager.ServerTLSFor(RoleManager),
			client:        worker.ClientTLS(RoleManager.ServerName()),
			wantServerErr: "node w1 is a worker, and this listener admits only [manager]",
		},
		{
			name:     "a manager answers to the worker name",
			server:   manager.ServerTLS(tls.RequireAndVerifyClientCert),
			client:   worker.ClientTLS(RoleWorker.ServerName()),
			wantPeer: "w1", wantRole: RoleWorker,
		},
		{
			name:          "client certificate from another CA",
			server:        manager.ServerTLS(tls.RequireAndVerifyClientCert),
			client:        foreignClient(foreign, manager),
			wantServerErr: "unknown authority",
		},
		{
			name:          "client certificate from another CA, optional client auth",
			server:        manager.ServerTLS(tls.VerifyClientCertIfGiven),
			client:        foreignClient(foreign, manager),
			wantServerErr: "unknown authority",
		},
		{
			name:          "no client certificate for a manager-only listener",
			server:        manager.ServerTLSFor(RoleManager),
			client:        noCert,
			wantServerErr: "client didn't provide a certificate",
		},
		{
			name:          "no client certificate when required",
			server:        manager.ServerTLS(tls.RequireAndVerifyClientCert),
			client:        noCert,
			wantServerErr: "client didn't provide a certificate",
		},
		{
			name:   "no client certificate when optional",
			server: manager.ServerTLS(tls.VerifyClientCertIfGiven),
			client: noCert,
		},
		{
			name:          "worker posing as manager",
			server:        worker.ServerTLS(tls.RequireAndVerifyClientCert),
			client:        manager.ClientTLS(RoleManager.ServerName()),
			wantClientErr: "not berth-manager",
		},
		{
			name:          "server from another CA",
			server:        foreign.ServerTLS(tls.RequireAndVerifyClientCert),
			client:        worker.ClientTLS(RoleWorker.ServerName()),
			wantClientErr: "unknown authority",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := handshake(t, tt.server, tt.client)
			if tt.wantServerErr != "" || tt.wantClientErr != "" {
				// The side that refuses names the reason; the other side
				// sees only an alert, but must fail too.
				checkErr(t, "server", res.serverErr, tt.wantServerErr)
				checkErr(t, "client", res.clientErr, tt.wantClientErr)
				if res.serverErr == nil || res.clientErr == nil {
					t.Errorf("a refused connection succeeded on one side: server %v, client %v", res.serverErr, res.clientErr)
				}
				return
			}
			checkOK(t, res)
			if res.serverState.Version != tls.VersionTLS13 {
				t.Errorf("TLS version = %x, want 1.3", res.serverState.Version)
			}
			nodeID, role, err := PeerIdentity(res.serverState)
			if tt.wantPeer == "" {
				if !errors.Is(err, ErrNoCertificate) {
					t.Errorf("PeerIdentity = %q, %v; want ErrNoCertificate", nodeID, err)
				}
				return
			}
			if err != nil || nodeID != tt.wantPeer || role != tt.wantRole {
				t.Errorf("PeerIdentity = %q %q %v, want %s %s", nodeID, role, err, tt.wantPeer, tt.wantRole)
			}
		})
	}
}

// foreignClient presents a certificate of another cluster while trusting
// ours, so only the server's check can stop it. It sends its certificate
// whatever CAs the server asks for, as an attacker would; a plain Go client
// would keep it back.
func foreignClient(foreign, ours *Identity) *tls.Config {
	cfg := foreign.ClientTLS(RoleManager.ServerName())
	cfg.RootCAs = ours.Pool
	cfg.Certificates = nil
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &foreign.Cert, nil
	}
	return cfg
}

// checkErr checks that err contains want; an empty want checks nothing.
func checkErr(t *testing.T, side string, err error, want string) {
	t.Helper()
	if want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
		t.Errorf("%s error = %v, want one containing %q", side, err, want)
	}
}

// checkOK checks that both sides of a handshake succeeded.
func checkOK(t *testing.T, res handshakeResult) {
	t.Helper()
	if res.serverErr != nil || res.clientErr != nil {
		t.Fatalf("handshake failed: server %v, client %v", res.serverErr, res.clientErr)
	}
}

func TestCAClientTLSRefusesGarbage(t *testing.T) {
	if _, err := CAClientTLS([]byte("not a CA"), RoleManager.ServerName()); err == nil {
		t.Fatal("CAClientTLS accepted a CA file without a certificate")
	}
}

func TestTLSMinimumVersion(t *testing.T) {
	id := issue(t, newTestCA(t, "c1"), "n", RoleManager)
	configs := map[string]*tls.Config{
		"server": id.ServerTLS(tls.RequireAndVerifyClientCert),
		"client": id.ClientTLS(RoleManager.ServerName()),
		"roles":  id.ServerTLSFor(RoleManager),
		"pinned": PinnedTLS(strings.Repeat("0", 64)),
	}
	for name, cfg := range configs {
		if cfg.MinVersion != tls.VersionTLS13 {
			t.Errorf("%s config allows TLS below 1.3", name)
		}
	}
}

func TestPinnedTLS(t *testing.T) {
	ca := newTestCA(t, "c1")
	manager := issue(t, ca, "m1", RoleManager)
	worker := issue(t, ca, "w1", RoleWorker)
	other := newTestCA(t, "c2")
	otherManager := issue(t, other, "m9", RoleManager)
	caKey := parseTestKey(t, mustKeyPEM(t, ca))

	// An impostor that sends the real CA certificate (it is public) after a
	// leaf signed by its own CA.
	impostor := otherManager.Cert
	impostor.Certificate = [][]byte{otherManager.Cert.Certificate[0], ca.Cert.Raw}

	tests := []struct {
		name        string
		fingerprint string
		serverCert  tls.Certificate
		wantErr     string // "" means the join handshake must succeed
		wantPinErr  bool
	}{
		{name: "manager of the pinned CA", fingerprint: ca.Fingerprint(), serverCert: manager.Cert},
		{name: "pin in upper case", fingerprint: strings.ToUpper(ca.Fingerprint()), serverCert: manager.Cert},
		{name: "manager of another CA", fingerprint: ca.Fingerprint(), serverCert: otherManager.Cert, wantErr: "did not send CA certificate", wantPinErr: true},
		{name: "pinning the other CA", fingerprint: other.Fingerprint(), serverCert: manager.Cert, wantErr: "did not send CA certificate", wantPinErr: true},
		{name: "impostor leaf beside the real CA", fingerprint: ca.Fingerprint(), serverCert: impostor, wantErr: "unknown authority", wantPinErr: true},
		{name: "self-signed leaf without the CA", fingerprint: ca.Fingerprint(), serverCert: selfSignedManager(t), wantErr: "did not send CA certificate", wantPinErr: true},
		{name: "worker of the pinned CA", fingerprint: ca.Fingerprint(), serverCert: worker.Cert, wantErr: "not berth-manager", wantPinErr: true},
		{name: "CA certificate as the leaf", fingerprint: ca.Fingerprint(), serverCert: tls.Certificate{Certificate: [][]byte{ca.Cert.Raw}, PrivateKey: caKey}, wantErr: "presented CA certificate"},
		{name: "malformed pin", fingerprint: "abc", serverCert: manager.Cert, wantErr: "not 64 hex digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{tt.serverCert},
				ClientAuth:   tls.VerifyClientCertIfGiven,
				ClientCAs:    manager.Pool,
			}
			res := handshake(t, server, PinnedTLS(tt.fingerprint))
			if tt.wantErr == "" {
				checkOK(t, res)
				return
			}
			checkErr(t, "client", res.clientErr, tt.wantErr)
			if res.serverErr == nil {
				t.Error("server completed a handshake the joining client refused")
			}
			if got := errors.Is(res.clientErr, ErrPinMismatch); got != tt.wantPinErr {
				t.Errorf("errors.Is(err, ErrPinMismatch) = %v, want %v", got, tt.wantPinErr)
			}
		})
	}
}

// selfSignedManager is a certificate anyone can make: it claims the manager
// name and server usage, but no CA vouches for it.
func selfSignedManager(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: mustSerial(t),
		Subject:      pkix.Name{CommonName: "m1", OrganizationalUnit: []string{"manager"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{RoleManager.ServerName()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func mustSerial(t *testing.T) *big.Int {
	t.Helper()
	s, err := newSerial()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func parseTestKey(t *testing.T, keyPEM []byte) *ecdsa.PrivateKey {
	t.Helper()
	key, err := parseKeyPEM(keyPEM, "test key")
	if err != nil {
		t.Fatal(err)
	}
	return key
}
