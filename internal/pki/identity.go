package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// The files a node keeps its identity in, inside its data directory.
const (
	CAFile   = "ca.crt"
	CertFile = "node.crt"
	KeyFile  = "node.key"
)

// Identity is a node's credentials: the cluster CA it trusts and the
// certificate and key the CA issued to it.
type Identity struct {
	CAPEM, CertPEM, KeyPEM []byte

	Cert   tls.Certificate // the node certificate then its CA; Cert.Leaf is the node's
	Pool   *x509.CertPool  // the cluster CA, to verify peers against
	NodeID string
	Role   Role
}

// NewIdentity checks that the three PEM blobs belong together (the key is
// the certificate's, the certificate was signed by the CA and carries a node
// ID and role) and builds an Identity from them.
func NewIdentity(caPEM, certPEM, keyPEM []byte) (*Identity, error) {
	cas, err := parseCertsPEM(caPEM, "CA certificate")
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node certificate and key do not form a pair: %w", err)
	}
	if pair.Leaf == nil { // GODEBUG=x509keypairleaf=0 leaves it unset
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse node certificate: %w", err)
		}
	}
	issuer, err := issuerOf(pair.Leaf, cas)
	if err != nil {
		return nil, err
	}
	// Send the CA after the node certificate in every handshake: a joining
	// node has only the CA's fingerprint, and pins the CA it finds here.
	if !bytes.Equal(pair.Certificate[len(pair.Certificate)-1], issuer.Raw) {
		pair.Certificate = append(pair.Certificate, issuer.Raw)
	}
	nodeID, role, err := ParseIdentity(pair.Leaf)
	if err != nil {
		return nil, err
	}
	return &Identity{
		CAPEM: caPEM, CertPEM: certPEM, KeyPEM: keyPEM,
		Cert: pair, Pool: poolOf(cas), NodeID: nodeID, Role: role,
	}, nil
}

func poolOf(cas []*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca)
	}
	return pool
}

// issuerOf returns the CA that signed leaf. It checks the signature only, not
// the validity period: an expired identity still loads, and the TLS handshake
// then says it expired instead of this saying it is broken.
func issuerOf(leaf *x509.Certificate, cas []*x509.Certificate) (*x509.Certificate, error) {
	for _, ca := range cas {
		if leaf.CheckSignatureFrom(ca) == nil {
			return ca, nil
		}
	}
	return nil, fmt.Errorf("node certificate %q was not issued by the cluster CA %q", leaf.Subject.CommonName, cas[0].Subject.CommonName)
}

// SaveIdentity writes the CA certificate, node certificate and node key into
// dir (created 0700 if missing), the key readable by its owner only. It
// refuses credentials that do not belong together, so a node never persists
// an identity it could not load. Each file is replaced atomically.
func SaveIdentity(dir string, caPEM, certPEM, keyPEM []byte) error {
	if _, err := NewIdentity(caPEM, certPEM, keyPEM); err != nil {
		return fmt.Errorf("save node identity: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save node identity: %w", err)
	}
	// A crash between two files can leave a key and a certificate that do
	// not match; LoadIdentity reports that as a mismatch rather than loading
	// it, and the node joins again.
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{KeyFile, keyPEM, 0o600},
		{CertFile, certPEM, 0o644},
		{CAFile, caPEM, 0o644},
	}
	for _, f := range files {
		if err := atomicfile.Write(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return fmt.Errorf("save node identity: %w", err)
		}
	}
	return nil
}

// LoadIdentity reads the identity SaveIdentity wrote into dir. A node that
// has not joined yet gets an error that wraps fs.ErrNotExist.
func LoadIdentity(dir string) (*Identity, error) {
	var blobs [3][]byte
	for i, name := range []string{CAFile, CertFile, KeyFile} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("load node identity (has this node joined a cluster?): %w", err)
		}
		blobs[i] = data
	}
	id, err := NewIdentity(blobs[0], blobs[1], blobs[2])
	if err != nil {
		return nil, fmt.Errorf("load node identity from %s: %w", dir, err)
	}
	return id, nil
}
