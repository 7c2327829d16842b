package server

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// resolveNode finds a node by ID, then by name, then by unique ID prefix,
// so users can type what `berth node ls` shows.
func resolveNode(view *state.View, ref string) (*types.Node, error) {
	if n := view.Node(ref); n != nil {
		return n, nil
	}
	var byName, byPrefix []*types.Node
	for _, n := range view.Nodes() {
		if n.Name == ref {
			byName = append(byName, n)
		}
		if ref != "" && strings.HasPrefix(n.ID, ref) {
			byPrefix = append(byPrefix, n)
		}
	}
	for _, found := range [][]*types.Node{byName, byPrefix} {
		switch len(found) {
		case 0:
			continue
		case 1:
			return found[0], nil
		default:
			return nil, &apiError{status: http.StatusConflict, msg: fmt.Sprintf("%q matches %d nodes; use the node ID", ref, len(found))}
		}
	}
	return nil, notFound("node %q not found", ref)
}

func (s *Server) setAvailability(w http.ResponseWriter, r *http.Request) error {
	var req api.AvailabilityRequest
	if err := decodeJSON(w, r, api.MaxRequestBytes, &req); err != nil {
		return err
	}
	if req.Availability != types.AvailabilityActive && req.Availability != types.AvailabilityDrain {
		return badRequest("availability", "must be active or drain, not %q", req.Availability)
	}
	n, err := resolveNode(s.store.View(), r.PathValue("id"))
	if err != nil {
		return err
	}
	res, err := s.Commit(r.Context(), &state.SetNodeAvailability{ID: n.ID, Availability: req.Availability})
	if err != nil {
		return err
	}
	s.log.Info("node availability changed", "node", n.Name, "availability", req.Availability)
	writeJSON(w, http.StatusOK, s.withBeat(res.(*types.Node)))
	return nil
}

func (s *Server) updateLabels(w http.ResponseWriter, r *http.Request) error {
	var req api.LabelsRequest
	if err := decodeJSON(w, r, api.MaxRequestBytes, &req); err != nil {
		return err
	}
	if len(req.Add) == 0 && len(req.Remove) == 0 {
		return badRequest("add", "give labels to add or remove")
	}
	if err := checkLabels("add", req.Add); err != nil {
		return err
	}
	for i, k := range req.Remove {
		if !types.ValidLabelKey(k) {
			return badRequest(fmt.Sprintf("remove[%d]", i), "invalid label key %q", k)
		}
	}
	n, err := resolveNode(s.store.View(), r.PathValue("id"))
	if err != nil {
		return err
	}
	res, err := s.Commit(r.Context(), &state.UpdateNodeLabels{ID: n.ID, Add: req.Add, Remove: req.Remove})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.withBeat(res.(*types.Node)))
	return nil
}

// removeNode deletes a node. A ready node would keep running its tasks
// unseen, so it is refused unless forced: drain it and stop its agent first.
func (s *Server) removeNode(w http.ResponseWriter, r *http.Request) error {
	force := false
	switch v := r.URL.Query().Get("force"); v {
	case "", "false", "0":
	case "true", "1":
		force = true
	default:
		return badRequest("force", "must be true or false, not %q", v)
	}
	n, err := resolveNode(s.store.View(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if n.Status == types.NodeReady && !force {
		return &apiError{status: http.StatusConflict, msg: fmt.Sprintf("node %s is ready; drain it and stop its agent first, or remove it with --force", n.Name)}
	}
	// Removal revokes the node's certificate in the same entry: a removed
	// node must not come back by registering again.
	now := s.clock.Now()
	if _, err := s.Commit(r.Context(), &state.RevokeNode{ID: n.ID, Now: now, Until: now.Add(pki.MaxCertTTL)}); err != nil {
		return err
	}
	s.log.Info("node removed and its certificate revoked", "node", n.Name, "id", n.ID, "forced", force)
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}
