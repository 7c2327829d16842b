package pki

import "fmt"

// Role is what a certificate allows its holder to be in the cluster. It is
// written into the certificate's Organizational Unit by the CA, so a peer's
// role comes from the CA's signature and never from what the peer claims.
type Role string

// The roles a cluster certificate can carry.
const (
	RoleManager Role = "manager"
	RoleWorker  Role = "worker"
	RoleAdmin   Role = "admin"
)

// serverNamePrefix starts the DNS name every certificate of a role carries,
// "berth-manager" for example. Nodes dial each other by this name rather than
// by address, because addresses in a CSR are the requester's claim while the
// role name is the CA's.
const serverNamePrefix = "berth-"

// ParseRole turns a role name as written in a certificate or on a command line
// into a Role.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", fmt.Errorf("role %q is not one of manager, worker or admin", s)
	}
	return r, nil
}

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleManager, RoleWorker, RoleAdmin:
		return true
	}
	return false
}

// ServerName is the DNS name every certificate of role r carries, and the name
// to verify when dialing a peer that must hold role r: a client that dials a
// manager uses ClientTLS(RoleManager.ServerName()). Manager certificates also
// carry the worker's name, since managers can run tasks too.
func (r Role) ServerName() string {
	return serverNamePrefix + string(r)
}

// serverNames lists the role names a certificate of role r carries. A
// manager carries the worker's name too: a manager may run tasks like any
// worker, and is trusted with more than any worker, so a peer that dials a
// worker may get a manager.
func (r Role) serverNames() []string {
	if r == RoleManager {
		return []string{RoleManager.ServerName(), RoleWorker.ServerName()}
	}
	return []string{r.ServerName()}
}

// article returns "a" or "an" for the role, so errors read as sentences.
func (r Role) article() string {
	if r == RoleAdmin {
		return "an"
	}
	return "a"
}
