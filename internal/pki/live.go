package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// PeerCheck is asked about every peer whose certificate verified against
// the cluster CA, at every handshake; an error refuses the connection. A
// manager checks its revocation list with it.
type PeerCheck func(nodeID string, role Role) error

// Live is a node's identity that renewal replaces while the node runs. The
// TLS configurations it makes present the current certificate at each new
// handshake, so a renewed certificate is used without restarting anything.
type Live struct {
	cur atomic.Pointer[Identity]
}

// NewLive starts a Live with the node's current identity.
func NewLive(id *Identity) *Live {
	l := &Live{}
	l.cur.Store(id)
	return l
}

// Identity is the current identity.
func (l *Live) Identity() *Identity { return l.cur.Load() }

// Replace makes next the identity, from the next handshake on. It must be
// the same node, role and CA: renewal extends an identity, never changes it.
func (l *Live) Replace(next *Identity) error {
	cur := l.cur.Load()
	switch {
	case next.NodeID != cur.NodeID || next.Role != cur.Role:
		return fmt.Errorf("renewed certificate is for %s %s, want %s %s", next.Role, next.NodeID, cur.Role, cur.NodeID)
	case string(next.CAPEM) != string(cur.CAPEM):
		return errors.New("renewed certificate comes with another cluster CA")
	}
	l.cur.Store(next)
	return nil
}

func (l *Live) certificate() *tls.Certificate { return &l.cur.Load().Cert }

// ServerTLS is Identity.ServerTLS with the current certificate, refusing
// peers that check rejects (nil: none).
func (l *Live) ServerTLS(clientAuth tls.ClientAuthType, check PeerCheck) *tls.Config {
	id := l.cur.Load()
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS13,
		ClientCAs:      id.Pool,
		ClientAuth:     clientAuth,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return l.certificate(), nil },
	}
	cfg.VerifyConnection = func(state tls.ConnectionState) error { return checkPeer(state, check) }
	return cfg
}

// ServerTLSFor is Identity.ServerTLSFor with the current certificate and
// check. The configuration also dials (its client certificate is the
// current one too), as the Raft transport does with one config both ways.
func (l *Live) ServerTLSFor(check PeerCheck, roles ...Role) *tls.Config {
	cfg := l.ServerTLS(tls.RequireAndVerifyClientCert, nil)
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return l.certificate(), nil }
	cfg.VerifyConnection = func(state tls.ConnectionState) error {
		if err := admitRoles(state, roles); err != nil {
			return err
		}
		return checkPeer(state, check)
	}
	return cfg
}

// ClientTLS is Identity.ClientTLS with the current certificate.
func (l *Live) ClientTLS(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		RootCAs:              l.cur.Load().Pool,
		ServerName:           serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return l.certificate(), nil },
	}
}

// checkPeer runs check on a peer that presented a verified certificate; a
// peer without one (a joining node, a token user) is left to the handler.
func checkPeer(state tls.ConnectionState, check PeerCheck) error {
	if check == nil || len(state.VerifiedChains) == 0 {
		return nil
	}
	nodeID, role, err := PeerIdentity(state)
	if err != nil {
		return err
	}
	return check(nodeID, role)
}

// DefaultCertTTL is how long a node certificate is valid (as Swarm's are);
// nodes renew theirs well before it ends.
const DefaultCertTTL = 90 * 24 * time.Hour

// MaxCertTTL bounds the validity a cluster may give its certificates. A
// revocation is kept this long: no certificate issued before it outlives it.
const MaxCertTTL = 366 * 24 * time.Hour

// NeedsRenewal reports whether cert should be renewed at now: once less
// than a third of its lifetime remains, leaving two thirds of it to retry in
// should the managers be unreachable for a while.
func NeedsRenewal(cert *x509.Certificate, now time.Time) bool {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotAfter.Sub(now) < life/3
}

// RenewAt is when cert should be renewed (see NeedsRenewal).
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotAfter.Add(-life / 3)
}
