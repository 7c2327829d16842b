package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
)

// errNotJoined is New's answer on a node with neither an identity nor a token.
var errNotJoined = errors.New("this node has not joined a cluster yet: give --token with a worker token (berth token worker on a manager)")

// joinAttemptTimeout bounds one join request, so a manager that accepts the
// connection but never answers is tried again instead of waited on forever.
const joinAttemptTimeout = 30 * time.Second

// pkiDir is where the node keeps its identity, inside its data dir.
func pkiDir(dataDir string) string { return filepath.Join(dataDir, "pki") }

// managerHostPort accepts a manager's cluster address as host:port or
// https://host:port and returns host:port. A plain-HTTP URL is refused: the
// cluster port speaks TLS only.
func managerHostPort(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("agent needs a manager address: give the cluster address of a manager (host:port of its --cluster-addr)")
	}
	hostPort, hadScheme := strings.CutPrefix(addr, "https://")
	if !hadScheme && strings.Contains(addr, "://") {
		return "", fmt.Errorf("manager address %q is not a cluster address: give host:port of a manager's --cluster-addr, which speaks TLS", addr)
	}
	hostPort = strings.TrimRight(hostPort, "/")
	if _, _, err := net.SplitHostPort(hostPort); err != nil {
		return "", fmt.Errorf("manager address %q is not host:port: %w", addr, err)
	}
	return hostPort, nil
}

// loadCredentials finds what the node proves itself with: the identity in
// DataDir/pki when it has joined, or else the join token, checked here so a
// missing or wrong token fails before anything starts.
func loadCredentials(cfg Config) (*pki.Identity, *pki.Token, error) {
	id, loadErr := pki.LoadIdentity(pkiDir(cfg.DataDir))
	if loadErr == nil {
		return id, nil, nil
	}
	if cfg.JoinToken == "" {
		if errors.Is(loadErr, fs.ErrNotExist) {
			return nil, nil, errNotJoined
		}
		return nil, nil, fmt.Errorf("%w; to join again, give --token with a worker token", loadErr)
	}
	// A half-written or broken identity is replaced by joining again.
	tok, err := pki.ParseToken(cfg.JoinToken)
	if err != nil {
		return nil, nil, fmt.Errorf("read the join token: %w", err)
	}
	if err := tok.CheckRole(pki.RoleWorker); err != nil {
		return nil, nil, fmt.Errorf("%w: an agent joins with the worker token (berth token worker on a manager)", err)
	}
	return nil, &tok, nil
}

// settleIdentity makes sure the node holds a certificate, joining the
// cluster with the token if it has none, and adopts the certificate's node
// ID: managers know a node by the CN of its certificate only. It then builds
// the client every later call to the manager uses.
func (a *Agent) settleIdentity(ctx context.Context) error {
	if a.identity != nil && len(a.cfg.Labels) > 0 {
		a.log.Info("--label applies when a node joins; this node has joined, so change its labels with berth node label")
	}
	if a.identity == nil {
		candidate, err := a.store.NodeID()
		if err != nil {
			return fmt.Errorf("read node id: %w", err)
		}
		if candidate == "" {
			candidate = newNodeID()
		}
		id, err := a.join(ctx, candidate)
		if err != nil {
			return err
		}
		a.identity = id
		a.log.Info("joined the cluster", "node_id", id.NodeID, "manager", a.managerAddr)
	}
	if err := a.setNodeID(a.identity.NodeID); err != nil {
		return err
	}
	// Every connection presents the current certificate, so renewal
	// needs no new client.
	a.live = pki.NewLive(a.identity)
	tlsCfg := a.live.ClientTLS(pki.RoleManager.ServerName())
	a.client = api.NewClient("https://"+a.managerAddr, api.WithTLS(tlsCfg))
	if known, err := a.store.Managers(); err == nil && len(known) > 0 {
		a.client.SetAddrs(known)
		a.mu.Lock()
		a.managers = known
		a.mu.Unlock()
	}
	return nil
}

// learnManagers follows the managers as they join and leave, to fail over
// to one of them when the one in use is lost, now or after a restart.
func (a *Agent) learnManagers(addrs []string) {
	if len(addrs) == 0 {
		return
	}
	a.client.SetAddrs(addrs)
	a.mu.Lock()
	same := slices.Equal(a.managers, addrs)
	a.managers = slices.Clone(addrs)
	a.mu.Unlock()
	if same {
		return
	}
	if err := a.store.SetManagers(addrs); err != nil {
		a.log.Warn("could not keep the managers' addresses", "err", err)
	}
}

// join asks the manager for a certificate, with a CSR whose CN is the
// node's candidate ID, over a connection that trusts only the CA the token
// names. Network failures and a busy manager (5xx) are retried with
// backoff; a refusal (4xx) or a manager of another cluster ends the join.
func (a *Agent) join(ctx context.Context, candidateID string) (*pki.Identity, error) {
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(candidateID, a.csrIPs(), nil)
	if err != nil {
		return nil, err
	}
	client := api.NewClient("https://"+a.managerAddr, api.WithTLS(pki.PinnedTLS(a.token.Fingerprint)))
	// The labels go with the join: the cluster records them with the node
	// now, and never takes labels from the node afterwards.
	req := api.JoinRequest{Token: a.token.String(), Role: string(pki.RoleWorker), Name: a.cfg.Name, CSR: csrPEM, Labels: a.cfg.Labels}
	retry := newBackoff(a.timing.RetryEvery)
	for {
		actx, cancel := context.WithTimeout(ctx, joinAttemptTimeout)
		resp, err := client.Join(actx, req)
		cancel()
		if err == nil {
			return a.saveJoined(resp, keyPEM)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if final := a.finalJoinError(err); final != nil {
			return nil, final
		}
		a.log.Warn("join the cluster failed; will retry", "manager", a.managerAddr, "err", err)
		if !api.SleepCtx(ctx, retry.Next()) {
			return nil, ctx.Err()
		}
	}
}

// finalJoinError returns the error to give up with when err cannot get
// better by retrying, or nil when it may (the network, a manager without a
// leader).
func (a *Agent) finalJoinError(err error) error {
	var apiErr *api.Error
	var recErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	switch {
	case errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500:
		return fmt.Errorf("manager %s refused to let this node join: %s", a.managerAddr, apiErr.Message)
	case errors.Is(err, pki.ErrPinMismatch):
		return fmt.Errorf("manager %s is not part of the cluster the join token names (check the address and the token): %w", a.managerAddr, err)
	case errors.As(err, &recErr), errors.Is(err, http.ErrSchemeMismatch):
		return fmt.Errorf("manager address %s does not speak TLS: give a manager's cluster address (--cluster-addr), not its API address: %w", a.managerAddr, err)
	case errors.As(err, &certErr), errors.As(err, &alert):
		return fmt.Errorf("join the cluster through manager %s: the TLS handshake failed: %w", a.managerAddr, err)
	}
	return nil
}

// saveJoined checks the identity the manager issued and saves it in
// DataDir/pki. The CA must be the one the token names, so the node never
// trusts a CA it was not told about, whatever the connection carried.
func (a *Agent) saveJoined(resp *api.JoinResponse, keyPEM []byte) (*pki.Identity, error) {
	id, err := pki.NewIdentity(resp.CAPEM, resp.CertPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("manager %s issued an unusable identity: %w", a.managerAddr, err)
	}
	issuer, err := x509.ParseCertificate(id.Cert.Certificate[len(id.Cert.Certificate)-1])
	if err != nil || pki.Fingerprint(issuer) != a.token.Fingerprint {
		return nil, fmt.Errorf("manager %s issued a certificate from another CA than the join token names", a.managerAddr)
	}
	if id.Role != pki.RoleWorker {
		return nil, fmt.Errorf("manager %s issued a certificate for role %s, want worker", a.managerAddr, id.Role)
	}
	if resp.NodeID != "" && resp.NodeID != id.NodeID {
		return nil, fmt.Errorf("manager %s answered node ID %s but certified %s", a.managerAddr, resp.NodeID, id.NodeID)
	}
	if err := pki.SaveIdentity(pkiDir(a.cfg.DataDir), resp.CAPEM, resp.CertPEM, keyPEM); err != nil {
		return nil, err
	}
	return id, nil
}

// csrIPs is the IP the agent's API is reached at, when the config names
// one, for tools that verify by address; berth itself verifies the worker
// role's name.
func (a *Agent) csrIPs() []net.IP {
	addr := a.cfg.AdvertiseAddr
	if addr == "" {
		addr = a.cfg.ListenAddr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		return nil
	}
	return []net.IP{ip}
}

// keepRenewed renews the node's certificate before it expires, over the
// mutual-TLS connection to a manager with the certificate being renewed.
// The new one is saved, then used from the next connection on; tasks are
// not touched.
func (a *Agent) keepRenewed(ctx context.Context) {
	pki.KeepRenewed(ctx, a.live, a.renewOnce, func(err error) {
		a.log.Warn("could not renew this node's certificate; will retry", "expires", a.live.Identity().Cert.Leaf.NotAfter, "err", a.explainRefusal(err))
	})
}

func (a *Agent) renewOnce(ctx context.Context) (*pki.Identity, error) {
	cur := a.live.Identity()
	csr, err := cur.RenewalCSR()
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, joinAttemptTimeout)
	defer cancel()
	resp, err := a.client.RenewCert(rctx, cur.NodeID, csr)
	if err != nil {
		return nil, err
	}
	next, err := cur.Renewed(pkiDir(a.cfg.DataDir), resp.CertPEM)
	if err != nil {
		return nil, err
	}
	a.log.Info("renewed this node's certificate", "expires", next.Cert.Leaf.NotAfter)
	// Connections kept alive still carry the old certificate; new ones
	// present the new one.
	a.client.CloseIdleConnections()
	return next, nil
}

// explainRefusal turns a manager's refusal of the node's certificate, which
// TLS reports only as an alert, into what happened and what to do. The
// alert does not say why; an expired certificate is told by its date.
func (a *Agent) explainRefusal(err error) error {
	if err == nil {
		return nil
	}
	alert, _ := api.PeerAlert(err)
	if !strings.HasPrefix(alert, "bad certificate") && !strings.HasPrefix(alert, "expired certificate") &&
		!strings.HasPrefix(alert, "certificate revoked") {
		return err
	}
	if a.live != nil && time.Now().After(a.live.Identity().Cert.Leaf.NotAfter) {
		return fmt.Errorf("this node's certificate expired at %s before it could be renewed: stop the agent, delete DATA_DIR/pki and start it with a current worker token (%w)",
			a.live.Identity().Cert.Leaf.NotAfter.Format(time.RFC3339), err)
	}
	return fmt.Errorf("the manager refused this node's certificate: the node was removed from the cluster (berth node rm) and its certificate revoked. To bring it back, stop the agent, delete DATA_DIR/pki and start it with a current worker token (%w)", err)
}
