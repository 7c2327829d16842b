package server

import (
	"errors"
	"net/http"
	"path/filepath"

	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/registry"
)

// The cluster registry (issue 16): every manager serves the Docker
// Registry API at /v2/ from internal/registry, on both ports.
//   - API port: a user (admin token or admin certificate) pushes and pulls.
//   - cluster port: a node certificate; a worker pulls, a manager (the
//     replicator) and an admin certificate do all.
//   - anyone else: 401 with a WWW-Authenticate challenge.

// registryReserve is the free space the registry leaves on the data
// disk, whatever its limit: the Raft log's next segments (64 MiB each) and
// snapshots need it, and a full disk halts writes (diskhealth.go).
const registryReserve = 512 << 20

// registryDir is where a manager's registry keeps its blobs.
func registryDir(dataDir string) string { return filepath.Join(dataDir, "registry") }

// registryHandler serves /v2/ on one listener.
func (s *Server) registryHandler(clusterPort bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := s.registryAccess(r, clusterPort)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				ae = &apiError{status: http.StatusUnauthorized, msg: err.Error()}
			}
			switch ae.status {
			case http.StatusForbidden:
				registry.Denied(w, ae.msg)
			case http.StatusUnauthorized:
				registry.Unauthorized(w, ae.msg)
			default:
				registry.WriteError(w, ae.status, "UNAVAILABLE", ae.msg)
			}
			return
		}
		s.registry.Serve(w, r, a)
	})
}

// registryAccess decides what a request may do from its credential.
func (s *Server) registryAccess(r *http.Request, clusterPort bool) (registry.Access, error) {
	if !clusterPort {
		if err := s.checkUser(r); err != nil {
			return registry.NoAccess, err
		}
		return registry.Push, nil
	}
	p, ok := certPeer(r)
	if !ok {
		return registry.NoAccess, &apiError{status: http.StatusUnauthorized, msg: "the cluster registry on the cluster port needs a node certificate from the cluster CA"}
	}
	if err := s.checkRevoked(p.nodeID, p.role); err != nil {
		return registry.NoAccess, &apiError{status: http.StatusForbidden, msg: err.Error()}
	}
	switch p.role {
	case pki.RoleWorker:
		return registry.Pull, nil
	case pki.RoleManager, pki.RoleAdmin:
		return registry.Push, nil
	}
	return registry.NoAccess, &apiError{status: http.StatusUnauthorized, msg: "this certificate's role may not use the cluster registry"}
}
