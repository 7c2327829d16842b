package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ServerTLS is Live.ServerTLS with no peer check, for an identity that is
// never renewed (a test's). Live alone builds the configurations, so a node
// and its tests speak the same TLS.
func (id *Identity) ServerTLS(clientAuth tls.ClientAuthType) *tls.Config {
	return NewLive(id).ServerTLS(clientAuth, nil)
}

// ServerTLSFor is Live.ServerTLSFor with no peer check (see ServerTLS).
func (id *Identity) ServerTLSFor(roles ...Role) *tls.Config {
	return NewLive(id).ServerTLSFor(nil, roles...)
}

// ClientTLS is Live.ClientTLS (see ServerTLS).
func (id *Identity) ClientTLS(serverName string) *tls.Config {
	return NewLive(id).ClientTLS(serverName)
}

// ErrRoleNotAdmitted means a peer has a valid cluster certificate, but for a
// role the listener does not serve.
var ErrRoleNotAdmitted = errors.New("the peer's role is not admitted here")

func admitRoles(state tls.ConnectionState, roles []Role) error {
	nodeID, role, err := PeerIdentity(state)
	if err != nil {
		return err
	}
	if !slices.Contains(roles, role) {
		return fmt.Errorf("%w: node %s is %s %s, and this listener admits only %v", ErrRoleNotAdmitted, nodeID, role.article(), role, roles)
	}
	return nil
}

// CAClientTLS is the configuration for a client that trusts the cluster CA
// but has no certificate: a user who authenticates with an admin token. It
// accepts only a server whose certificate the CA issued for serverName.
func CAClientTLS(caPEM []byte, serverName string) (*tls.Config, error) {
	cas, err := parseCertsPEM(caPEM, "CA certificate")
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: poolOf(cas), ServerName: serverName}, nil
}

// PinnedTLS is the configuration for a node that has no certificate yet and
// dials a manager to join. It trusts no system root and no CA it is shown:
// the manager must send the cluster CA certificate in its chain, that
// certificate's SHA-256 must equal fingerprint (from the join token), and
// the manager's certificate must verify against it, with the manager role's
// name and server authentication.
//
// Go's own verification is switched off (InsecureSkipVerify) only because it
// cannot take a root that arrives in the handshake; VerifyConnection does the
// full chain verification instead, on every connection, resumed or not.
func PinnedTLS(fingerprint string) *tls.Config {
	want := strings.ToLower(fingerprint)
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ServerName:         RoleManager.ServerName(),
		InsecureSkipVerify: true,
		VerifyConnection: func(state tls.ConnectionState) error {
			return verifyPinned(state.PeerCertificates, want)
		},
	}
}

// ErrPinMismatch means the server a joining node dialed does not belong to
// the cluster named by the join token's fingerprint.
var ErrPinMismatch = errors.New("the server's CA does not match the join token's fingerprint")

// verifyPinned verifies a server's chain against the CA certificate within
// it whose fingerprint is want.
func verifyPinned(chain []*x509.Certificate, want string) error {
	if err := checkFingerprint(want); err != nil {
		return err
	}
	if len(chain) == 0 {
		return errors.New("the server presented no certificate")
	}
	leaf := chain[0]
	if leaf.IsCA {
		return fmt.Errorf("the server presented CA certificate %q as its own", leaf.Subject.CommonName)
	}
	roots := x509.NewCertPool()
	intermediates := x509.NewCertPool()
	pinned := false
	for _, cert := range chain[1:] {
		if cert.IsCA && Fingerprint(cert) == want {
			roots.AddCert(cert)
			pinned = true
			continue
		}
		intermediates.AddCert(cert)
	}
	if !pinned {
		return fmt.Errorf("%w: the server did not send CA certificate %s", ErrPinMismatch, want)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		DNSName:       RoleManager.ServerName(),
		Roots:         roots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPinMismatch, err)
	}
	return nil
}

// checkFingerprint refuses a malformed pin, which would otherwise match
// nothing and fail with a misleading mismatch.
func checkFingerprint(fp string) error {
	b, err := hex.DecodeString(fp)
	if err != nil || len(b) != 32 {
		return fmt.Errorf("CA fingerprint %q is not 64 hex digits (a SHA-256)", fp)
	}
	return nil
}
