package agent

import (
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/internal/pki"
)

// requireManager lets through only requests whose client certificate, from
// the cluster CA, is a manager's: the agent API serves task output, which
// only managers may read (and proxy to users they authenticated).
func requireManager(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			writeError(w, http.StatusUnauthorized, pki.ErrNoCertificate.Error())
			return
		}
		node, role, err := pki.PeerIdentity(*r.TLS)
		if err != nil {
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		}
		if role != pki.RoleManager {
			writeError(w, http.StatusForbidden, fmt.Sprintf("node %s holds a %s certificate; only managers may use the agent API", node, role))
			return
		}
		next.ServeHTTP(w, r)
	})
}
