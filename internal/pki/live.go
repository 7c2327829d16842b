package pki

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
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
	// sessions holds the TLS sessions its client configurations resume;
	// Replace starts an empty one, so the renewed certificate is the one
	// the next connection presents (a resumed session carries the
	// certificate of its first handshake).
	sessions atomic.Pointer[sessionCache]
}

// NewLive starts a Live with the node's current identity.
func NewLive(id *Identity) *Live {
	l := &Live{}
	l.cur.Store(id)
	l.sessions.Store(newSessionCache())
	return l
}

// sessionCache is one identity's resumable TLS sessions.
type sessionCache struct{ tls.ClientSessionCache }

// sessionCacheSize bounds the sessions one identity keeps. The cache is
// keyed by server name, which is a role (every manager answers to the
// same one), so it holds the last manager's session: a connection to
// another manager makes a full handshake and keeps that one's instead.
const sessionCacheSize = 8

func newSessionCache() *sessionCache {
	return &sessionCache{tls.NewLRUClientSessionCache(sessionCacheSize)}
}

// liveSessions is the ClientSessionCache of a Live's client
// configurations: whichever cache belongs to the current identity.
type liveSessions struct{ l *Live }

func (s liveSessions) Get(key string) (*tls.ClientSessionState, bool) {
	return s.l.sessions.Load().Get(key)
}

func (s liveSessions) Put(key string, cs *tls.ClientSessionState) {
	s.l.sessions.Load().Put(key, cs)
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
	l.sessions.Store(newSessionCache())
	return nil
}

func (l *Live) certificate() *tls.Certificate { return &l.cur.Load().Cert }

// ServerTLS is the configuration of a node's listener: it presents the
// current certificate and verifies client certificates against the cluster
// CA, refusing peers that check rejects (nil: none). clientAuth is
// tls.RequireAndVerifyClientCert between nodes, and
// tls.VerifyClientCertIfGiven on a listener that also admits joining nodes
// (which have no certificate yet) or token-authenticated users; such a
// server authorises each request with PeerIdentity.
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

// ServerTLSFor is ServerTLS(tls.RequireAndVerifyClientCert, check) that
// also admits only peers of the given roles. A valid cluster certificate
// alone is not enough where the role matters: the Raft transport between
// managers must refuse a worker, whose certificate verifies against the
// same CA. The configuration also dials (its client certificate is the
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

// ClientTLS is the configuration for dialing another node: it presents the
// current certificate and accepts only a server whose certificate the
// cluster CA issued for serverName. Dial by role, not by address:
// ClientTLS(RoleManager.ServerName()) accepts managers and nothing else.
//
// It resumes TLS sessions: a new connection to a manager it spoke to
// before skips both certificate chains and both signatures (the key
// exchange is still fresh). Under load that is what keeps reconnecting
// cheap: with 1,000 sim nodes, full handshakes were half of the sim's CPU
// and a tenth of each manager's. Nothing is trusted for longer: the server
// re-checks the certificate in the ticket against its CA and the clock,
// and VerifyConnection (revocation) runs on resumed connections too.
func (l *Live) ClientTLS(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		RootCAs:              l.cur.Load().Pool,
		ServerName:           serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return l.certificate(), nil },
		ClientSessionCache:   liveSessions{l},
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
	return !now.Before(RenewAt(cert))
}

// RenewAt is when cert should be renewed (see NeedsRenewal). The lifetime
// counts from issue, not from NotBefore, which is backdated by clockSkew.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore.Add(clockSkew))
	return cert.NotAfter.Add(-life / 3)
}

// KeepRenewed renews live's certificate with renew each time it reaches
// RenewAt, until ctx is done. renew returns the new identity, already
// saved; a failure is passed to failed and retried (every minute at most,
// sooner for short lifetimes), so a node that cannot reach a manager for a
// while still renews before its certificate ends.
func KeepRenewed(ctx context.Context, live *Live, renew func(context.Context) (*Identity, error), failed func(error)) {
	for {
		leaf := live.Identity().Cert.Leaf
		if !sleepUntil(ctx, RenewAt(leaf)) {
			return
		}
		next, err := renew(ctx)
		if err == nil {
			err = live.Replace(next)
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		failed(err)
		life := leaf.NotAfter.Sub(leaf.NotBefore.Add(clockSkew))
		if !sleepUntil(ctx, time.Now().Add(min(time.Minute, max(time.Second, life/20)))) {
			return
		}
	}
}

// sleepUntil waits until t, or reports false when ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// RenewalCSR is a certificate request for the identity's own key, node ID
// and addresses. Renewal keeps the key: only the certificate file changes
// (atomically), so a crash while saving can never pair a key with another
// key's certificate.
func (id *Identity) RenewalCSR() ([]byte, error) {
	signer, ok := id.Cert.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the key of node %s cannot sign a certificate request", id.NodeID)
	}
	leaf := id.Cert.Leaf
	var dns []string
	for _, name := range leaf.DNSNames {
		if _, reserved := reservedRole(name); !reserved {
			dns = append(dns, name)
		}
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: id.NodeID}, IPAddresses: leaf.IPAddresses, DNSNames: dns}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, signer)
	if err != nil {
		return nil, fmt.Errorf("create the renewal request: %w", err)
	}
	return encodePEM(pemCSR, der), nil
}

// Renewed is the identity with certPEM, a renewal of its certificate for
// the same key, saved into dir.
func (id *Identity) Renewed(dir string, certPEM []byte) (*Identity, error) {
	next, err := NewIdentity(id.CAPEM, certPEM, id.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("the renewed certificate: %w", err)
	}
	if next.NodeID != id.NodeID || next.Role != id.Role {
		return nil, fmt.Errorf("the renewed certificate is for %s %s, want %s %s", next.Role, next.NodeID, id.Role, id.NodeID)
	}
	if err := SaveIdentity(dir, id.CAPEM, certPEM, id.KeyPEM); err != nil {
		return nil, err
	}
	return next, nil
}
