package server

import (
	"context"
	"fmt"
	"net"
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
		if _, role, err := pki.PeerIdentity(*r.TLS); err != nil || role != pki.RoleManager {
			return &apiError{status: http.StatusForbidden, msg: "only managers may call this endpoint"}
		}
		return next(w, r)
	}
}

// requireUser guards the user API when it listens beyond loopback: a client
// certificate with the admin (or manager) role, or the admin token.
func (s *Server) requireUser(next handlerFunc) handlerFunc {
	if s.apiOpen {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		if p, ok := certPeer(r); ok && (p.role == pki.RoleAdmin || p.role == pki.RoleManager) {
			return next(w, r)
		}
		auth := r.Header.Get(api.HeaderAuthorization)
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			return &apiError{status: http.StatusUnauthorized, msg: "this manager requires a credential: an admin token (Authorization: Bearer ...) or a client certificate from the cluster CA; see berth context create"}
		}
		cl := s.store.View().Cluster()
		if cl == nil || !pki.AdminTokenMatches(tok, cl.AdminTokenHash) {
			return &apiError{status: http.StatusUnauthorized, msg: "the admin token was not accepted by this cluster"}
		}
		return next(w, r)
	}
}

// isLoopback reports whether addr ("host:port") listens on loopback only;
// there the user API may stay open, as a dev cluster's does.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
