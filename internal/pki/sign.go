package pki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// SignCSR issues a certificate to the node nodeID with role role, valid for
// ttl from now (but never past the CA's own expiry).
//
// The CA decides who the holder is: CN is nodeID and OU is role whatever the
// CSR's subject says. From the CSR it takes only the public key, whose
// signature must verify, and its IP and DNS names, which are the requester's
// claim. A CSR that asks for another role's name ("berth-manager" in a
// worker's CSR) is refused, since peers verify roles by those names. Every
// certificate carries its role's name (a manager's also the worker's, see
// Role.ServerName) and allows both client and server authentication, because
// nodes both serve and dial.
func (c *CA) SignCSR(csrPEM []byte, nodeID string, role Role, now time.Time, ttl time.Duration) ([]byte, error) {
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	if err := checkIssue(nodeID, role, ttl); err != nil {
		return nil, err
	}
	dnsNames, err := certDNSNames(role, csr.DNSNames)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for node %s: %w", nodeID, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         nodeID,
			OrganizationalUnit: []string{string(role)},
			Organization:       c.Cert.Subject.Organization,
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              c.clampExpiry(now.Add(ttl)),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dnsNames,
		IPAddresses:           uniqueIPs(csr.IPAddresses),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, csr.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for node %s: %w", nodeID, err)
	}
	return encodePEM(pemCertificate, der), nil
}

// parseCSR decodes a PEM CSR and checks its self-signature, which proves the
// requester holds the private key of the public key it asks us to certify.
func parseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	der, err := decodePEM(csrPEM, pemCSR, "certificate request")
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature does not verify: %w", err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, err
	}
	return csr, nil
}

// checkPublicKey refuses keys too weak to put the cluster's name on.
func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("certificate request key uses curve %s, want P-256 or P-384", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return nil
		}
		return fmt.Errorf("certificate request key is %d-bit RSA, want at least 2048 bits", k.N.BitLen())
	}
	return fmt.Errorf("certificate request key is a %T, want ECDSA, Ed25519 or RSA", pub)
}

// checkIssue validates what the caller, not the requester, decides.
func checkIssue(nodeID string, role Role, ttl time.Duration) error {
	switch {
	case nodeID == "":
		return errors.New("sign certificate: the node ID is empty")
	case !role.Valid():
		return fmt.Errorf("sign certificate for node %s: role %q is not one of manager, worker or admin", nodeID, role)
	case ttl <= 0:
		return fmt.Errorf("sign certificate for node %s: validity %s is not positive", nodeID, ttl)
	}
	return nil
}

// certDNSNames returns the role's names followed by the CSR's DNS names,
// without duplicates, and refuses names reserved for other roles.
func certDNSNames(role Role, requested []string) ([]string, error) {
	names := role.serverNames()
	for _, name := range requested {
		name = strings.ToLower(strings.TrimSuffix(name, "."))
		if !validHostname(name) {
			return nil, fmt.Errorf("the request asks for name %q, which is not a plain host name (no wildcards)", name)
		}
		if slices.Contains(names, name) {
			continue
		}
		if other, reserved := reservedRole(name); reserved {
			return nil, fmt.Errorf("the request asks for name %q, reserved for %s %s", name, other.article(), other)
		}
		names = append(names, name)
	}
	return names, nil
}

// validHostname accepts dot-separated labels of letters, digits and inner
// hyphens. Wildcards are refused: today's verifiers would not let "*" stand
// for "berth-manager", but the CA should not rely on that.
func validHostname(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// reservedRole reports whether name is the server name of a role.
func reservedRole(name string) (Role, bool) {
	for _, r := range []Role{RoleManager, RoleWorker, RoleAdmin} {
		if name == r.ServerName() {
			return r, true
		}
	}
	return "", false
}

func uniqueIPs(ips []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		if !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	return out
}

// clampExpiry keeps a certificate from outliving the CA that signed it: such
// a certificate would stop verifying at the CA's expiry anyway, and saying so
// in NotAfter makes renewal logic see the real deadline.
func (c *CA) clampExpiry(t time.Time) time.Time {
	if t.After(c.Cert.NotAfter) {
		return c.Cert.NotAfter
	}
	return t
}
