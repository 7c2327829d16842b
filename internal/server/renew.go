package server

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
)

// renewNode signs a new certificate for the node whose current one made
// the request (requireNode has checked it is valid and not revoked), with
// the same node ID and role: renewal extends an identity, never changes it.
// Any manager can sign, so it runs where it arrives.
func (s *Server) renewNode(w http.ResponseWriter, r *http.Request) error {
	p := peerOf(r.Context())
	if id := r.PathValue("id"); id != p.nodeID {
		return &apiError{status: http.StatusForbidden, msg: fmt.Sprintf("node %s may renew only its own certificate, not %s's", p.nodeID, id)}
	}
	var req api.RenewRequest
	if err := decodeJSON(w, r, api.MaxRequestBytes, &req); err != nil {
		return err
	}
	cl, ca, err := s.clusterCA()
	if err != nil {
		return err
	}
	cert, err := ca.SignCSR(req.CSR, p.nodeID, p.role, s.clock.Now(), s.cfg.CertTTL)
	if err != nil {
		return badRequest("csr", "%v", err)
	}
	s.log.Info("node certificate renewed", "id", p.nodeID, "role", p.role)
	writeJSON(w, http.StatusOK, api.RenewResponse{CertPEM: cert, CAPEM: cl.CACertPEM})
	return nil
}

// keepRenewed renews this manager's certificate before it expires. A
// manager holds the sealing key and so the CA: it signs its own renewal,
// which needs no other manager up.
func (s *Server) keepRenewed(ctx context.Context) {
	pki.KeepRenewed(ctx, s.creds.live, func(context.Context) (*pki.Identity, error) { return s.renewSelf() },
		func(err error) { s.log.Warn("could not renew this manager's certificate; will retry", "err", err) })
}

func (s *Server) renewSelf() (*pki.Identity, error) {
	if err := s.checkRevoked(s.id, pki.RoleManager); err != nil {
		return nil, err
	}
	_, ca, err := s.clusterCA()
	if err != nil {
		return nil, err
	}
	cur := s.creds.live.Identity()
	csrPEM, err := cur.RenewalCSR()
	if err != nil {
		return nil, err
	}
	certPEM, err := ca.SignCSR(csrPEM, s.id, pki.RoleManager, s.clock.Now(), s.cfg.CertTTL)
	if err != nil {
		return nil, err
	}
	id, err := cur.Renewed(filepath.Join(s.cfg.DataDir, pkiDir), certPEM)
	if err != nil {
		return nil, err
	}
	s.log.Info("renewed this manager's certificate", "expires", id.Cert.Leaf.NotAfter)
	return id, nil
}
