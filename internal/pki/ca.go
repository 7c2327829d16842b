package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

const (
	// caValidity is how long a cluster CA lives. Rotating a CA means
	// re-issuing every node certificate, so it is long.
	caValidity = 10 * 365 * 24 * time.Hour

	// clockSkew backdates every certificate's NotBefore, so a node whose
	// clock runs a little behind the CA's accepts a certificate it was
	// just given.
	clockSkew = 5 * time.Minute

	caCommonNamePrefix = "berth-ca-"
)

// CA is the cluster's certificate authority: it signs the certificate of every
// node and admin. Only managers hold it, and the key is stored sealed (see
// Sealer).
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA creates a self-signed ECDSA P-256 CA for the cluster clusterID, valid
// for ten years from now.
func NewCA(clusterID string, now time.Time) (*CA, error) {
	if clusterID == "" {
		return nil, errors.New("create cluster CA: the cluster ID is empty")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create cluster CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   caCommonNamePrefix + clusterID,
			Organization: []string{clusterID},
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs node certificates only, never another CA.
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-sign cluster CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new cluster CA: %w", err)
	}
	return &CA{Cert: cert, CertPEM: encodePEM(pemCertificate, der), key: key}, nil
}

// LoadCA rebuilds a CA from its certificate and private key, as saved with
// CertPEM and KeyPEM. It refuses a key that does not belong to the certificate.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCertPEM(certPEM, "CA certificate")
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("certificate %q is not a CA certificate", cert.Subject.CommonName)
	}
	key, err := parseKeyPEM(keyPEM, "CA key")
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("the CA key does not belong to CA certificate %q", cert.Subject.CommonName)
	}
	return &CA{Cert: cert, CertPEM: encodePEM(pemCertificate, cert.Raw), key: key}, nil
}

// KeyPEM returns the CA's private key as PKCS #8 PEM. Seal it before it is
// written anywhere.
func (c *CA) KeyPEM() ([]byte, error) {
	return marshalKeyPEM(c.key)
}

// Fingerprint is the SHA-256 of the CA certificate's DER bytes, in lowercase
// hex. Join tokens carry it, so a joining node can tell the real cluster from
// an impostor before it trusts anything the cluster says.
func (c *CA) Fingerprint() string {
	return Fingerprint(c.Cert)
}

// ClusterID returns the ID of the cluster the CA was made for.
func (c *CA) ClusterID() string {
	return strings.TrimPrefix(c.Cert.Subject.CommonName, caCommonNamePrefix)
}

// Fingerprint is the SHA-256 of a certificate's DER bytes, in lowercase hex.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// newSerial returns a random 128-bit serial number: unique without keeping a
// counter in the cluster state.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	serial, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("generate certificate serial number: %w", err)
	}
	return serial, nil
}
