package server

import (
	"context"
	"fmt"
	"net/http"
	"regexp"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/controller"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

var csrIDRE = regexp.MustCompile(`^[a-f0-9]{16}$`)

// join admits a node that proves a join token: it signs the node's CSR
// with the cluster CA; a manager also gets the sealing key and is recorded
// as a member (it becomes a voter when it asks, once its Raft listens).
func (s *Server) join(w http.ResponseWriter, r *http.Request) error {
	var req api.JoinRequest
	if err := decodeJSON(w, r, api.MaxRequestBytes, &req); err != nil {
		return err
	}
	role, err := nodeRole(req.Role)
	if err != nil {
		return err
	}
	if req.Name == "" || len(req.Name) > 253 {
		return badRequest("name", "required, at most 253 characters")
	}
	cl, ca, err := s.clusterCA()
	if err != nil {
		return err
	}
	if err := s.checkToken(cl, ca, req.Token, role); err != nil {
		return err
	}
	nodeID := s.pickNodeID(req.CSR, cl)
	cert, err := ca.SignCSR(req.CSR, nodeID, role, s.clock.Now(), s.cfg.CertTTL)
	if err != nil {
		return badRequest("csr", "%v", err)
	}
	resp := api.JoinResponse{NodeID: nodeID, CertPEM: cert, CAPEM: cl.CACertPEM}
	if role == pki.RoleWorker {
		if err := s.admitNode(r.Context(), nodeID, req); err != nil {
			return err
		}
	}
	if role == pki.RoleManager {
		if err := validateManagerAddrs(req); err != nil {
			return err
		}
		m := types.Manager{ID: nodeID, Name: req.Name, RaftAddr: req.RaftAddr, APIAddr: req.APIAddr, ClusterAddr: req.ClusterAddr}
		if _, err := s.Commit(r.Context(), &state.UpsertManager{Manager: m}); err != nil {
			return err
		}
		resp.SealingKey = s.creds.sealingKey
	}
	s.log.Info("node joined", "name", req.Name, "id", nodeID, "role", role)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// clusterRecord is the cluster's record, or a 503 while a new cluster's
// first leader has not committed it yet.
func (s *Server) clusterRecord() (*types.Cluster, error) {
	cl := s.store.View().Cluster()
	if cl == nil {
		return nil, &apiError{status: http.StatusServiceUnavailable, msg: "the cluster is still starting; retry shortly"}
	}
	return cl, nil
}

// clusterCA is the cluster's record and its CA, unsealed to sign or to
// mint tokens.
func (s *Server) clusterCA() (*types.Cluster, *pki.CA, error) {
	cl, err := s.clusterRecord()
	if err != nil {
		return nil, nil, err
	}
	ca, err := s.loadCA(cl)
	if err != nil {
		return nil, nil, err
	}
	return cl, ca, nil
}

// nodeRole reads the role of a join token: worker or manager (admins hold
// no join token).
func nodeRole(s string) (pki.Role, error) {
	role, err := pki.ParseRole(s)
	if err != nil || role == pki.RoleAdmin {
		return "", badRequest("role", "must be worker or manager")
	}
	return role, nil
}

// checkToken verifies a presented join token against the cluster's current
// one for the role, in constant time.
func (s *Server) checkToken(cl *types.Cluster, ca *pki.CA, presented string, role pki.Role) error {
	tok, err := pki.ParseToken(presented)
	if err != nil {
		return badRequest("token", "%v", err)
	}
	if err := tok.CheckRole(role); err != nil {
		return badRequest("token", "%v", err)
	}
	current, err := s.openToken(cl, role)
	if err != nil {
		return err
	}
	want, _ := pki.ParseToken(current)
	if err := tok.Verify(ca.Fingerprint(), pki.HashToken(want.Secret)); err != nil {
		return &apiError{status: http.StatusForbidden, msg: "join refused: " + err.Error()}
	}
	return nil
}

// pickNodeID keeps the ID a node chose for itself (its CSR's common name),
// unless another node or manager has it, or it was revoked: a removed node
// that joins again is a new node.
func (s *Server) pickNodeID(csrPEM []byte, cl *types.Cluster) string {
	if cn := pki.CSRCommonName(csrPEM); csrIDRE.MatchString(cn) && s.store.View().Node(cn) == nil && cl.Manager(cn) == nil && !cl.IsRevoked(cn) {
		return cn
	}
	return controller.NewTaskID()
}

func validateManagerAddrs(req api.JoinRequest) error {
	for field, v := range map[string]string{"raft_addr": req.RaftAddr, "api_addr": req.APIAddr, "cluster_addr": req.ClusterAddr} {
		if err := checkHostPort(v); err != nil {
			return badRequest(field, "%v", err)
		}
	}
	return nil
}

func (s *Server) loadCA(cl *types.Cluster) (*pki.CA, error) {
	key, err := s.creds.sealer.Open(cl.CAKeySealed, []byte(adCAKey))
	if err != nil {
		return nil, fmt.Errorf("unseal the cluster CA key: %w", err)
	}
	return pki.LoadCA(cl.CACertPEM, key)
}

func (s *Server) openToken(cl *types.Cluster, role pki.Role) (string, error) {
	sealed := cl.WorkerTokenSealed
	if role == pki.RoleManager {
		sealed = cl.ManagerTokenSealed
	}
	tok, err := s.creds.sealer.Open(sealed, []byte(adToken+string(role)))
	if err != nil {
		return "", fmt.Errorf("unseal the %s token: %w", role, err)
	}
	return string(tok), nil
}

// WorkerToken returns the current worker join token ("" before the
// cluster record exists); a dev cluster's in-process agent joins with it.
func (s *Server) WorkerToken() string {
	cl := s.store.View().Cluster()
	if cl == nil {
		return ""
	}
	tok, err := s.openToken(cl, pki.RoleWorker)
	if err != nil {
		return ""
	}
	return tok
}

func (s *Server) tokens(w http.ResponseWriter, r *http.Request) error {
	cl, err := s.clusterRecord()
	if err != nil {
		return err
	}
	var out api.Tokens
	if out.Worker, err = s.openToken(cl, pki.RoleWorker); err != nil {
		return err
	}
	if out.Manager, err = s.openToken(cl, pki.RoleManager); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request) error {
	var req api.RotateRequest
	if err := decodeJSON(w, r, api.MaxRequestBytes, &req); err != nil {
		return err
	}
	role, err := nodeRole(req.Role)
	if err != nil {
		return err
	}
	_, ca, err := s.clusterCA()
	if err != nil {
		return err
	}
	sealed, err := newSealedToken(ca.Fingerprint(), role, s.creds.sealer)
	if err != nil {
		return err
	}
	cmd := &state.SetTokens{WorkerSealed: sealed}
	if role == pki.RoleManager {
		cmd = &state.SetTokens{ManagerSealed: sealed}
	}
	if _, err := s.Commit(r.Context(), cmd); err != nil {
		return err
	}
	s.log.Info("join token rotated", "role", role)
	return s.tokens(w, r)
}

func (s *Server) members(w http.ResponseWriter, r *http.Request) error {
	servers, err := s.raft.Servers(r.Context())
	if err != nil {
		return err
	}
	cl := s.store.View().Cluster()
	out := make([]api.Member, 0, len(servers))
	for _, sv := range servers {
		m := api.Member{ID: sv.ID, RaftAddr: sv.Address, Leader: sv.Leader, Voter: sv.Voter, Reachable: s.reachable(sv.ID)}
		if cl != nil {
			if rec := cl.Manager(sv.ID); rec != nil {
				m.Name, m.APIAddr, m.ClusterAddr = rec.Name, rec.APIAddr, rec.ClusterAddr
			}
		}
		out = append(out, m)
	}
	s.memberHealth(r.Context(), out)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// addMember makes a joined manager a voter (leader only).
func (s *Server) addMember(w http.ResponseWriter, r *http.Request) error {
	var req api.AddMemberRequest
	if err := decodeJSON(w, r, api.MaxRequestBytes, &req); err != nil {
		return err
	}
	cl := s.store.View().Cluster()
	if cl == nil || cl.Manager(req.ID) == nil {
		return notFound("manager %q has not joined; join with a manager token first", req.ID)
	}
	if err := checkHostPort(req.RaftAddr); err != nil {
		return badRequest("raft_addr", "%v", err)
	}
	if err := s.admitVoter(r.Context(), req.ID, req.RaftAddr, cl.Manager(req.ID).ClusterAddr); err != nil {
		return err
	}
	s.log.Info("manager added as a voter", "id", req.ID, "raft", req.RaftAddr)
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if id == s.id {
		return &apiError{status: http.StatusConflict, msg: "a manager cannot remove itself; ask another manager"}
	}
	known, err := s.isMember(r.Context(), id)
	if err != nil {
		return err
	}
	if !known {
		return notFound("manager %q is not a member; berth server members lists them", id)
	}
	if err := s.raft.RemoveServer(r.Context(), id); err != nil {
		return err
	}
	if _, err := s.Commit(r.Context(), &state.RemoveManager{ID: id}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// isMember reports whether id is a manager of the cluster: in the Raft
// configuration, or joined (in the cluster record) but not yet a voter.
func (s *Server) isMember(ctx context.Context, id string) (bool, error) {
	servers, err := s.raft.Servers(ctx)
	if err != nil {
		return false, err
	}
	for _, sv := range servers {
		if sv.ID == id {
			return true, nil
		}
	}
	cl := s.store.View().Cluster()
	return cl != nil && cl.Manager(id) != nil, nil
}

// WaitWorkerToken returns the worker join token as soon as the cluster
// record exists (a new cluster commits it on its first election), for the
// dev cluster's in-process agent.
func (s *Server) WaitWorkerToken(ctx context.Context) (string, error) {
	for {
		idx := s.store.View().Index(state.TableCluster)
		if tok := s.WorkerToken(); tok != "" {
			return tok, nil
		}
		if _, err := s.store.WaitForChange(ctx, []string{state.TableCluster}, idx); err != nil {
			return "", fmt.Errorf("wait for the cluster to initialise: %w", err)
		}
	}
}
