package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSignCSR(t *testing.T) {
	now := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	ca, err := NewCA("c1", now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		role     Role
		ips      []net.IP
		dns      []string
		wantDNS  []string
		wantIPs  []string
		csrSubj  string // what the requester claims; the CA ignores it
		ttl      time.Duration
		wantLife time.Duration
	}{
		{
			name: "worker with addresses", role: RoleWorker,
			ips: []net.IP{net.ParseIP("127.0.1.2"), net.ParseIP("::1")}, dns: []string{"host2.example"},
			wantDNS: []string{"berth-worker", "host2.example"}, wantIPs: []string{"127.0.1.2", "::1"},
			csrSubj: "n-worker", ttl: 90 * 24 * time.Hour, wantLife: 90 * 24 * time.Hour,
		},
		{
			name: "manager asking for its own role name", role: RoleManager,
			ips: []net.IP{net.ParseIP("127.0.1.1"), net.ParseIP("127.0.1.1")}, dns: []string{"BERTH-MANAGER", "m1", "berth-worker"},
			wantDNS: []string{"berth-manager", "berth-worker", "m1"}, wantIPs: []string{"127.0.1.1"},
			csrSubj: "claims-to-be-someone-else", ttl: time.Hour, wantLife: time.Hour,
		},
		{
			name: "admin without addresses", role: RoleAdmin,
			wantDNS: []string{"berth-admin"},
			ttl:     time.Hour, wantLife: time.Hour,
		},
		{
			name: "validity clamped to the CA's", role: RoleWorker,
			wantDNS: []string{"berth-worker"},
			ttl:     20 * 365 * 24 * time.Hour, wantLife: ca.Cert.NotAfter.Sub(now),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, csrPEM, err := NewKeyAndCSR(tt.csrSubj, tt.ips, tt.dns)
			if err != nil {
				t.Fatal(err)
			}
			certPEM, err := ca.SignCSR(csrPEM, "node-1", tt.role, now, tt.ttl)
			if err != nil {
				t.Fatalf("SignCSR: %v", err)
			}
			cert, err := parseCertPEM(certPEM, "node certificate")
			if err != nil {
				t.Fatal(err)
			}
			if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
				t.Errorf("certificate does not verify against the CA: %v", err)
			}
			nodeID, role, err := ParseIdentity(cert)
			if err != nil || nodeID != "node-1" || role != tt.role {
				t.Errorf("ParseIdentity = %q, %q, %v; want node-1, %s", nodeID, role, err, tt.role)
			}
			if !slices.Equal(cert.DNSNames, tt.wantDNS) {
				t.Errorf("DNS SANs = %q, want %q", cert.DNSNames, tt.wantDNS)
			}
			var ips []string
			for _, ip := range cert.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, tt.wantIPs) {
				t.Errorf("IP SANs = %q, want %q", ips, tt.wantIPs)
			}
			if cert.IsCA {
				t.Error("node certificate is a CA")
			}
			if got := cert.NotAfter.Sub(now); got != tt.wantLife {
				t.Errorf("lives %v after now, want %v", got, tt.wantLife)
			}
			verifyBothUsages(t, ca, cert, now)
		})
	}
}

// verifyBothUsages checks the certificate chains to the CA for a client and
// for a server, since nodes both dial and serve.
func verifyBothUsages(t *testing.T, ca *CA, cert *x509.Certificate, now time.Time) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}
		if _, err := cert.Verify(opts); err != nil {
			t.Errorf("certificate does not verify for usage %v: %v", usage, err)
		}
	}
}

func TestSignCSRRefuses(t *testing.T) {
	ca := newTestCA(t, "c1")
	_, goodCSR, err := NewKeyAndCSR("n1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, wildcardCSR, err := NewKeyAndCSR("n1", nil, []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	_, dottedCSR, err := NewKeyAndCSR("n1", nil, []string{"Berth-Manager."})
	if err != nil {
		t.Fatal(err)
	}
	_, adminNameCSR, err := NewKeyAndCSR("n1", nil, []string{"berth-admin"})
	if err != nil {
		t.Fatal(err)
	}
	_, managerNameCSR, err := NewKeyAndCSR("n1", nil, []string{"ok.example", "berth-manager"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		csr     []byte
		nodeID  string
		role    Role
		ttl     time.Duration
		wantErr string
	}{
		{"bad signature", corruptSignature(t, goodCSR), "n1", RoleWorker, time.Hour, "signature does not verify"},
		{"not PEM", []byte("csr"), "n1", RoleWorker, time.Hour, "not PEM"},
		{"a certificate, not a CSR", ca.CertPEM, "n1", RoleWorker, time.Hour, "want \"CERTIFICATE REQUEST\""},
		{"worker asking for the manager name", managerNameCSR, "n1", RoleWorker, time.Hour, "reserved for a manager"},
		{"manager asking for the admin name", adminNameCSR, "n1", RoleManager, time.Hour, "reserved for an admin"},
		{"admin asking for the manager name", managerNameCSR, "n1", RoleAdmin, time.Hour, "reserved for a manager"},
		{"wildcard name", wildcardCSR, "n1", RoleWorker, time.Hour, "not a plain host name"},
		{"manager name with a trailing dot", dottedCSR, "n1", RoleWorker, time.Hour, "reserved for a manager"},
		{"empty node ID", goodCSR, "", RoleWorker, time.Hour, "node ID is empty"},
		{"unknown role", goodCSR, "n1", Role("root"), time.Hour, "not one of manager, worker or admin"},
		{"zero validity", goodCSR, "n1", RoleWorker, 0, "not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := ca.SignCSR(tt.csr, tt.nodeID, tt.role, time.Now(), tt.ttl)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("SignCSR = %d bytes, error %v; want an error containing %q", len(cert), err, tt.wantErr)
			}
		})
	}
}

// corruptSignature flips the last byte of a CSR, which lies inside the
// signature's s value: the request still parses, but no longer verifies.
func corruptSignature(t *testing.T, csrPEM []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(csrPEM)
	der := slices.Clone(block.Bytes)
	der[len(der)-1] ^= 0xff
	return pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der})
}

func TestParseIdentityRefuses(t *testing.T) {
	ca := newTestCA(t, "c1")
	// The CA certificate has a CN but no role: it is nobody's identity.
	if _, _, err := ParseIdentity(ca.Cert); err == nil {
		t.Fatal("ParseIdentity accepted the CA certificate as a node identity")
	}
}

func TestSignCSRKeyTypes(t *testing.T) {
	ca := newTestCA(t, "c1")
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		key     crypto.Signer
		wantErr string // "" means the CSR is signed
	}{
		{"P-384", p384, ""},
		{"Ed25519", edKey, ""},
		{"P-224", p224, "curve P-224"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			csrPEM := pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der})
			_, err = ca.SignCSR(csrPEM, "n1", RoleWorker, time.Now(), time.Hour)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("SignCSR: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("SignCSR error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
