package pki

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	now := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	ca, err := NewCA("c1", now)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	c := ca.Cert
	if got, want := c.Subject.CommonName, "berth-ca-c1"; got != want {
		t.Errorf("CN = %q, want %q", got, want)
	}
	if !c.IsCA || !c.MaxPathLenZero || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA cert: IsCA=%v MaxPathLenZero=%v KeyUsage=%v, want a CA that signs leaves only", c.IsCA, c.MaxPathLenZero, c.KeyUsage)
	}
	if c.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm = %v, want ECDSA", c.PublicKeyAlgorithm)
	}
	if got := c.NotAfter.Sub(now); got < 3650*24*time.Hour {
		t.Errorf("validity = %v, want 10 years", got)
	}
	if !c.NotBefore.Before(now) {
		t.Errorf("NotBefore = %v, want backdated before %v", c.NotBefore, now)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if ca.ClusterID() != "c1" {
		t.Errorf("ClusterID = %q, want c1", ca.ClusterID())
	}
	fp := ca.Fingerprint()
	if len(fp) != 64 || fp != strings.ToLower(fp) {
		t.Errorf("Fingerprint = %q, want 64 lowercase hex digits", fp)
	}
	if _, err := NewCA("", now); err == nil {
		t.Error("NewCA with an empty cluster ID succeeded")
	}
}

func TestCARoundTrip(t *testing.T) {
	ca := newTestCA(t, "c1")
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatalf("KeyPEM: %v", err)
	}
	loaded, err := LoadCA(ca.CertPEM, keyPEM)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if loaded.Fingerprint() != ca.Fingerprint() {
		t.Errorf("fingerprint changed across save and load")
	}
	// The loaded CA must sign with the same key: its certificates verify
	// against the original CA certificate.
	id := issue(t, loaded, "n1", RoleWorker)
	if err := id.Cert.Leaf.CheckSignatureFrom(ca.Cert); err != nil {
		t.Errorf("certificate from the loaded CA does not verify against the original: %v", err)
	}
}

func TestLoadCARefuses(t *testing.T) {
	ca := newTestCA(t, "c1")
	other := newTestCA(t, "c2")
	otherKey, err := other.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	leaf := issue(t, ca, "n1", RoleManager)

	tests := []struct {
		name            string
		certPEM, keyPEM []byte
		wantErr         string
	}{
		{"key of another CA", ca.CertPEM, otherKey, "does not belong"},
		{"leaf certificate", leaf.CertPEM, leaf.KeyPEM, "not a CA certificate"},
		{"garbage certificate", []byte("nope"), otherKey, "not PEM"},
		{"key where the certificate goes", otherKey, otherKey, "want \"CERTIFICATE\""},
		{"certificate where the key goes", ca.CertPEM, ca.CertPEM, `want "PRIVATE KEY"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCA(tt.certPEM, tt.keyPEM)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadCA error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
