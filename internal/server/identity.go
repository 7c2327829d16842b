package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// Files under the data dir. The node identity (ca.crt, node.crt, node.key)
// is in pki/; the sealing key that seals secrets, tokens and the CA key in
// Raft is keys/sealing.key; keys/bootstrap.json holds the cluster record a
// new cluster commits once its first leader is elected (all of it sealed or
// hashed).
const (
	pkiDir        = "pki"
	sealingFile   = "keys/sealing.key"
	bootstrapFile = "keys/bootstrap.json"
)

// MinCertTTL is the shortest certificate lifetime a manager accepts:
// renewal (a third of the lifetime before expiry) must not become a busy
// loop. Tests use it; clusters want days.
const MinCertTTL = 10 * time.Second

// credentials are what a manager needs to speak TLS and unseal. live is
// this manager's identity, replaced when it renews its certificate.
type credentials struct {
	live       *pki.Live
	sealer     *pki.Sealer
	sealingKey []byte
	// adminToken is set only on the bootstrap run, to be shown once.
	adminToken string
}

// prepareIdentity loads this manager's identity, or makes one: by joining
// the cluster at cfg.Join, or by bootstrapping a new cluster.
func (s *Server) prepareIdentity(ctx context.Context) (*credentials, error) {
	dir := filepath.Join(s.cfg.DataDir, pkiDir)
	if id, err := pki.LoadIdentity(dir); err == nil {
		sealer, key, err := s.loadSealer()
		if err != nil {
			return nil, err
		}
		return &credentials{live: pki.NewLive(id), sealer: sealer, sealingKey: key}, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load this manager's identity from %s: %w", dir, err)
	}
	if s.cfg.Join != "" {
		return s.joinCluster(ctx)
	}
	return s.bootstrapCluster()
}

func (s *Server) loadSealer() (*pki.Sealer, []byte, error) {
	key, err := os.ReadFile(filepath.Join(s.cfg.DataDir, sealingFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read the sealing key: %w", err)
	}
	sealer, err := pki.NewSealer(key)
	return sealer, key, err
}

func (s *Server) saveSealingKey(key []byte) (*pki.Sealer, error) {
	path := filepath.Join(s.cfg.DataDir, sealingFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("write the sealing key: %w", err)
	}
	return pki.NewSealer(key)
}

// bootstrapCluster creates a cluster: its CA, this manager's certificate,
// the sealing key, join tokens and an admin token. The cluster record is
// kept on disk until the first leadership commits it.
func (s *Server) bootstrapCluster() (*credentials, error) {
	now := s.clock.Now()
	ca, err := pki.NewCA(s.id, now)
	if err != nil {
		return nil, err
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	sealer, err := s.saveSealingKey(key)
	if err != nil {
		return nil, err
	}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(s.id, s.addrIPs(), nil)
	if err != nil {
		return nil, err
	}
	certPEM, err := ca.SignCSR(csrPEM, s.id, pki.RoleManager, now, s.cfg.CertTTL)
	if err != nil {
		return nil, err
	}
	rec, admin, err := newClusterRecord(ca, sealer, now)
	if err != nil {
		return nil, err
	}
	if s.cfg.AddressPool.IsValid() {
		rec.AddressPool = s.cfg.AddressPool.String()
	}
	rec.AddressSlice = s.cfg.AddressSlice
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(s.cfg.DataDir, bootstrapFile), b, 0o600); err != nil {
		return nil, fmt.Errorf("write the bootstrap record: %w", err)
	}
	if err := pki.SaveIdentity(filepath.Join(s.cfg.DataDir, pkiDir), ca.CertPEM, certPEM, keyPEM); err != nil {
		return nil, err
	}
	id, err := pki.LoadIdentity(filepath.Join(s.cfg.DataDir, pkiDir))
	if err != nil {
		return nil, err
	}
	return &credentials{live: pki.NewLive(id), sealer: sealer, sealingKey: key, adminToken: admin}, nil
}

// newClusterRecord seals the CA key and fresh join tokens, and hashes a
// fresh admin token, which it returns to be shown once.
func newClusterRecord(ca *pki.CA, sealer *pki.Sealer, now time.Time) (*types.Cluster, string, error) {
	caKey, err := ca.KeyPEM()
	if err != nil {
		return nil, "", err
	}
	rec := &types.Cluster{ID: ca.ClusterID(), CACertPEM: ca.CertPEM, CreatedAt: now}
	if rec.CAKeySealed, err = sealer.Seal(caKey, []byte(adCAKey)); err != nil {
		return nil, "", err
	}
	for role, dst := range map[pki.Role]*[]byte{pki.RoleWorker: &rec.WorkerTokenSealed, pki.RoleManager: &rec.ManagerTokenSealed} {
		if *dst, err = newSealedToken(ca.Fingerprint(), role, sealer); err != nil {
			return nil, "", err
		}
	}
	admin, err := pki.NewAdminToken()
	if err != nil {
		return nil, "", err
	}
	rec.AdminTokenHash = pki.HashToken(admin)
	return rec, admin, nil
}

// Additional data that binds each sealed value to what it is, so one cannot
// be swapped for another.
const (
	adCAKey   = "berth:ca-key"
	adToken   = "berth:token:"
	adSecret  = "berth:secret:"
	adConfigs = "berth:config:"
)

func newSealedToken(fingerprint string, role pki.Role, sealer *pki.Sealer) ([]byte, error) {
	tok, err := pki.NewToken(fingerprint, role)
	if err != nil {
		return nil, err
	}
	return sealer.Seal([]byte(tok), []byte(adToken+string(role)))
}

// joinCluster joins through another manager's cluster port with a manager
// token: the token pins the cluster's CA, the manager signs our CSR and
// hands over the sealing key.
func (s *Server) joinCluster(ctx context.Context) (*credentials, error) {
	tok, err := pki.ParseToken(s.cfg.JoinToken)
	if err != nil {
		return nil, fmt.Errorf("--token: %w", err)
	}
	if err := tok.CheckRole(pki.RoleManager); err != nil {
		return nil, fmt.Errorf("--token: %w", err)
	}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(s.id, s.addrIPs(), nil)
	if err != nil {
		return nil, err
	}
	c := api.NewClient("https://"+s.cfg.Join, api.WithTLS(pki.PinnedTLS(tok.Fingerprint)))
	var resp *api.JoinResponse
	for attempt := 0; ; attempt++ {
		resp, err = c.Join(ctx, api.JoinRequest{
			Token: s.cfg.JoinToken, Role: string(pki.RoleManager), Name: s.cfg.Name, CSR: csrPEM,
			RaftAddr: s.cfg.RaftAddr, APIAddr: s.cfg.HTTPAddr, ClusterAddr: s.cfg.ClusterAddr,
		})
		var ae *api.Error
		if err == nil || errors.As(err, &ae) && ae.Status < 500 || attempt >= 30 || ctx.Err() != nil {
			break
		}
		s.log.Warn("join failed; retrying", "manager", s.cfg.Join, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("join the cluster at %s: %w", s.cfg.Join, err)
	}
	if resp.NodeID != s.id {
		return nil, fmt.Errorf("join: the cluster gave ID %s to this manager, whose ID is %s", resp.NodeID, s.id)
	}
	sealer, err := s.saveSealingKey(resp.SealingKey)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.cfg.DataDir, pkiDir)
	if err := pki.SaveIdentity(dir, resp.CAPEM, resp.CertPEM, keyPEM); err != nil {
		return nil, err
	}
	id, err := pki.LoadIdentity(dir)
	if err != nil {
		return nil, err
	}
	s.log.Info("joined the cluster", "via", s.cfg.Join, "id", s.id)
	return &credentials{live: pki.NewLive(id), sealer: sealer, sealingKey: resp.SealingKey}, nil
}

// addrIPs are the IPs this manager's certificate names, so users and nodes
// may dial it by address as well as by role name.
func (s *Server) addrIPs() []net.IP {
	var ips []net.IP
	seen := map[string]bool{}
	for _, a := range []string{s.cfg.HTTPAddr, s.cfg.ClusterAddr, s.cfg.RaftAddr} {
		host, _, err := net.SplitHostPort(a)
		if ip := net.ParseIP(host); err == nil && ip != nil && !seen[ip.String()] {
			seen[ip.String()] = true
			ips = append(ips, ip)
		}
	}
	return ips
}

// raftTLS is mutual TLS between managers: our current manager certificate,
// and only peers holding a manager certificate from our CA (a worker's would
// verify against the same CA, so the role is checked too) that check passes.
func raftTLS(live *pki.Live, check pki.PeerCheck) *tls.Config {
	c := live.ServerTLSFor(check, pki.RoleManager)
	c.RootCAs = live.Identity().Pool
	c.ServerName = pki.RoleManager.ServerName()
	return c
}

// commitBootstrap commits the cluster record made at bootstrap, once, on
// the first leadership; then the file goes.
func (s *Server) commitBootstrap(ctx context.Context) error {
	path := filepath.Join(s.cfg.DataDir, bootstrapFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if s.store.View().Cluster() == nil {
		var rec types.Cluster
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if _, err := s.Commit(ctx, &state.InitCluster{Cluster: &rec}); err != nil {
			return err
		}
	}
	return os.Remove(path)
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" || port == "0" {
		return fmt.Errorf("%q is not host:port", addr)
	}
	return nil
}

// reachable reports whether a manager's Raft port accepts a connection.
func (s *Server) reachable(id string) bool {
	if id == s.id {
		return true
	}
	cl := s.store.View().Cluster()
	if cl == nil || cl.Manager(id) == nil {
		return false
	}
	conn, err := net.DialTimeout("tcp", cl.Manager(id).RaftAddr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// ReplaceAdminToken makes a fresh admin token, hands it to save, and then
// commits its hash, which replaces the old one: a dev cluster does it on
// each start that is not its bootstrap, as the token it showed before is
// kept only hashed. Saving first means whoever finds the saved token may
// get a 401 for a moment, never the old token working on. It waits for the
// cluster record and for this manager to lead.
func (s *Server) ReplaceAdminToken(ctx context.Context, save func(token string) error) error {
	if _, err := s.WaitWorkerToken(ctx); err != nil {
		return err
	}
	// A restarted manager has the record from its log before it leads.
	for !s.raft.IsLeader() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait to lead before making an admin token: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	tok, err := pki.NewAdminToken()
	if err != nil {
		return err
	}
	if err := save(tok); err != nil {
		return err
	}
	if _, err := s.Commit(ctx, &state.SetAdminToken{Hash: pki.HashToken(tok)}); err != nil {
		return fmt.Errorf("record the new admin token: %w", err)
	}
	return nil
}
