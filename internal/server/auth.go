package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
)

// HeaderForwardedNode carries, on a request a follower forwards to the
// leader, the node ID of the agent that made it. The leader believes it only
// from a peer holding a manager certificate.
const HeaderForwardedNode = "X-Berth-Forwarded-Node"

type peerKey struct{}

// peer is who made a request: a node from its certificate (or, forwarded,
// from the forwarding manager's word), or an admin by token.
type peer struct {
	nodeID string
	role   pki.Role
}

func peerOf(ctx context.Context) peer {
	p, _ := ctx.Value(peerKey{}).(peer)
	return p
}

// certPeer reads the verified client certificate of a TLS request.
func certPeer(r *http.Request) (peer, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return peer{}, false
	}
	id, role, err := pki.PeerIdentity(*r.TLS)
	if err != nil {
		return peer{}, false
	}
	if fwd := r.Header.Get(HeaderForwardedNode); fwd != "" && role == pki.RoleManager {
		return peer{nodeID: fwd, role: pki.RoleWorker}, true
	}
	return peer{nodeID: id, role: role}, true
}

// requireNode admits requests on the cluster port from nodes of this
// cluster (their certificate says so), and only for their own node: a worker
// cannot speak for another node.
func (s *Server) requireNode(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, ok := certPeer(r)
		if !ok {
			return &apiError{status: http.StatusUnauthorized, msg: "this endpoint needs a node certificate from the cluster CA; join the cluster with a token first"}
		}
		if err := s.checkRevoked(p.nodeID, p.role); err != nil {
			return &apiError{status: http.StatusForbidden, msg: err.Error()}
		}
		if id := r.PathValue("id"); id != "" && p.role == pki.RoleWorker && id != p.nodeID {
			return &apiError{status: http.StatusForbidden, msg: fmt.Sprintf("node %s may not act for node %s", p.nodeID, id)}
		}
		return next(w, r.WithContext(context.WithValue(r.Context(), peerKey{}, p)))
	}
}

// requireManager admits only other managers (forwarded writes, members).
func (s *Server) requireManager(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			return &apiError{status: http.StatusUnauthorized, msg: "this endpoint needs a manager certificate from the cluster CA"}
		}
		id, role, err := pki.PeerIdentity(*r.TLS)
		if err != nil || role != pki.RoleManager {
			return &apiError{status: http.StatusForbidden, msg: "only managers may call this endpoint"}
		}
		if err := s.checkRevoked(id, role); err != nil {
			return &apiError{status: http.StatusForbidden, msg: err.Error()}
		}
		return next(w, r)
	}
}

// requireUser guards the user API, on loopback as beyond it: a client
// certificate with the admin (or manager) role, or the admin token. Any
// user of the machine can reach a loopback port, so loopback proves nothing.
func (s *Server) requireUser(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.checkUser(r); err != nil {
			return err
		}
		return next(w, r)
	}
}

// checkUser is requireUser's rule (the registry applies it too): nil for a
// user, else an *apiError saying what is missing.
func (s *Server) checkUser(r *http.Request) error {
	if p, ok := certPeer(r); ok && (p.role == pki.RoleAdmin || p.role == pki.RoleManager) {
		if err := s.checkRevoked(p.nodeID, p.role); err != nil {
			return &apiError{status: http.StatusForbidden, msg: err.Error()}
		}
		return nil
	}
	auth := r.Header.Get(api.HeaderAuthorization)
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return &apiError{status: http.StatusUnauthorized, msg: "this manager requires a credential: an admin token (BERTH_TOKEN, or Authorization: Bearer ...) or a client certificate from the cluster CA; see berth context create"}
	}
	cl, err := s.clusterRecord()
	if err != nil {
		return err
	}
	if !pki.AdminTokenMatches(tok, cl.AdminTokenHash) {
		return &apiError{status: http.StatusUnauthorized, msg: "the admin token was not accepted by this cluster"}
	}
	return nil
}

// checkRevoked refuses a node whose certificates were revoked (`berth node
// rm`). It runs at every handshake on the cluster, Raft and API ports, and
// on every request, since a connection opened before the revocation lives on.
func (s *Server) checkRevoked(nodeID string, _ pki.Role) error {
	if cl := s.store.View().Cluster(); cl != nil && cl.IsRevoked(nodeID) {
		return fmt.Errorf("node %s was removed from the cluster and its certificate is revoked; to bring the machine back, delete its DATA_DIR/pki and join again with a current token", nodeID)
	}
	return nil
}
