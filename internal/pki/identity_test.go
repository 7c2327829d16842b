package pki

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveLoadIdentity(t *testing.T) {
	ca := newTestCA(t, "c1")
	id := issue(t, ca, "node-7", RoleManager)
	dir := filepath.Join(t.TempDir(), "pki")

	if err := SaveIdentity(dir, id.CAPEM, id.CertPEM, id.KeyPEM); err != nil {
		t.Fatalf("SaveIdentity: %v", err)
	}
	loaded, err := LoadIdentity(dir)
	if err != nil {
		t.Fatalf("LoadIdentity: %v", err)
	}
	if loaded.NodeID != "node-7" || loaded.Role != RoleManager {
		t.Errorf("loaded identity = %s %s, want node-7 manager", loaded.NodeID, loaded.Role)
	}
	if !bytes.Equal(loaded.KeyPEM, id.KeyPEM) || !bytes.Equal(loaded.CertPEM, id.CertPEM) || !bytes.Equal(loaded.CAPEM, id.CAPEM) {
		t.Error("loaded PEM differs from what was saved")
	}
	if n := len(loaded.Cert.Certificate); n != 2 {
		t.Errorf("TLS chain has %d certificates, want the node's and the CA's", n)
	}

	wantPerm := map[string]fs.FileMode{KeyFile: 0o600, CertFile: 0o644, CAFile: 0o644}
	for name, want := range wantPerm {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s mode = %v, want %v", name, got, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Errorf("directory holds %d entries, want 3 (no temporary files left)", len(entries))
	}
}

func TestSaveIdentityRefusesMismatch(t *testing.T) {
	ca := newTestCA(t, "c1")
	other := newTestCA(t, "c2")
	a := issue(t, ca, "a", RoleWorker)
	b := issue(t, ca, "b", RoleWorker)
	foreign := issue(t, other, "f", RoleWorker)

	tests := []struct {
		name                   string
		caPEM, certPEM, keyPEM []byte
		wantErr                string
	}{
		{"key of another node", a.CAPEM, a.CertPEM, b.KeyPEM, "do not form a pair"},
		{"certificate from another CA", a.CAPEM, foreign.CertPEM, foreign.KeyPEM, "not issued by the cluster CA"},
		{"CA file that is not a certificate", a.KeyPEM, a.CertPEM, a.KeyPEM, "want only \"CERTIFICATE\""},
		{"CA certificate used as a node certificate", a.CAPEM, a.CAPEM, mustKeyPEM(t, ca), "has 0 roles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := SaveIdentity(dir, tt.caPEM, tt.certPEM, tt.keyPEM)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("SaveIdentity error = %v, want one containing %q", err, tt.wantErr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused identity left %d files behind", len(entries))
			}
		})
	}
}

func mustKeyPEM(t *testing.T, ca *CA) []byte {
	t.Helper()
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestLoadIdentityNotJoined(t *testing.T) {
	_, err := LoadIdentity(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadIdentity of an empty directory = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadIdentityDetectsTornWrite(t *testing.T) {
	ca := newTestCA(t, "c1")
	old := issue(t, ca, "n", RoleWorker)
	renewed := issue(t, ca, "n", RoleWorker)
	dir := t.TempDir()
	if err := SaveIdentity(dir, old.CAPEM, old.CertPEM, old.KeyPEM); err != nil {
		t.Fatal(err)
	}
	// A crash after the key of a renewal was written, before its certificate.
	if err := os.WriteFile(filepath.Join(dir, KeyFile), renewed.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(dir); err == nil || !strings.Contains(err.Error(), "do not form a pair") {
		t.Fatalf("LoadIdentity of a mismatched key = %v, want a pair error", err)
	}
}
