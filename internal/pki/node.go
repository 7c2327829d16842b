package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
)

// ErrNoCertificate means a peer presented no certificate that verified
// against the cluster CA. An API server answers it with 401.
var ErrNoCertificate = errors.New("no client certificate issued by this cluster was presented")

// NewKeyAndCSR creates a node's ECDSA P-256 private key and a certificate
// request for it. nodeID is informational (the CA sets the certificate's
// subject itself) and may be empty when the cluster assigns the ID; ips and
// dnsNames are the addresses the node will serve on.
func NewKeyAndCSR(nodeID string, ips []net.IP, dnsNames []string) (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("create node key: %w", err)
	}
	tmpl := &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: nodeID},
		IPAddresses: ips,
		DNSNames:    dnsNames,
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate request: %w", err)
	}
	keyPEM, err = marshalKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return keyPEM, encodePEM(pemCSR, der), nil
}

// ParseIdentity reads the node ID and role the CA wrote into a certificate.
// Call it only on a certificate that has been verified against the cluster
// CA: the fields are trustworthy because of that signature.
func ParseIdentity(cert *x509.Certificate) (nodeID string, role Role, err error) {
	nodeID = cert.Subject.CommonName
	if nodeID == "" {
		return "", "", errors.New("certificate has no node ID in its common name")
	}
	ous := cert.Subject.OrganizationalUnit
	if len(ous) != 1 {
		return "", "", fmt.Errorf("certificate of node %s has %d roles, want exactly one", nodeID, len(ous))
	}
	role, err = ParseRole(ous[0])
	if err != nil {
		return "", "", fmt.Errorf("certificate of node %s: %w", nodeID, err)
	}
	return nodeID, role, nil
}

// PeerIdentity returns the node ID and role of the peer of a TLS connection
// whose certificate verified against the cluster CA, or ErrNoCertificate.
// A server that allows connections without a certificate
// (tls.VerifyClientCertIfGiven) uses it to authorise each request.
func PeerIdentity(state tls.ConnectionState) (nodeID string, role Role, err error) {
	if len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return "", "", ErrNoCertificate
	}
	return ParseIdentity(state.VerifiedChains[0][0])
}
