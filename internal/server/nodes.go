package server

import (
	"context"
	"net/http"
	"slices"
	"strconv"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) error {
	idx, err := s.block(r, state.TableNodes)
	if err != nil {
		return err
	}
	nodes := s.store.View().Nodes()
	out := make([]*types.Node, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, s.withBeat(n))
	}
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getNode(w http.ResponseWriter, r *http.Request) error {
	n, err := resolveNode(s.store.View(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.withBeat(n))
	return nil
}

func (s *Server) withBeat(n *types.Node) *types.Node {
	c := *n
	c.LastHeartbeat, _ = s.beats.Last(n.ID)
	return &c
}

func (s *Server) registerNode(w http.ResponseWriter, r *http.Request) error {
	var req api.RegisterRequest
	if err := decodeJSON(w, r, api.MaxRequestBytes, &req); err != nil {
		return err
	}
	n := req.Node
	// The node is who and what its certificate says, whatever the body
	// claims: placement constraints trust a node's role and labels, so
	// neither comes from the node. Its labels are those recorded at join
	// and changed by `berth node label` since; the stored ones are kept.
	p := peerOf(r.Context())
	n.ID, n.Role, n.Labels = p.nodeID, string(p.role), nil
	applyNodeDefaults(&n)
	if err := validateNode(&n); err != nil {
		return err
	}
	n.Status = types.NodeReady
	res, err := s.Commit(r.Context(), &state.UpsertNode{Node: &n})
	if err != nil {
		return err
	}
	stored := res.(*types.Node)
	s.beats.Beat(stored.ID, s.clock.Now())
	s.log.Info("node registered", "node", stored.Name, "id", stored.ID, "address", stored.Address, "drivers", stored.Drivers)
	writeJSON(w, http.StatusOK, api.RegisterResponse{NodeID: stored.ID, HeartbeatTTL: s.heartbeatTTL(), Managers: s.managerClusterAddrs()})
	return nil
}

// admitNode records a worker at join, with the labels it joined with (its
// --label flags). The node is down until its agent registers, which it does
// right after; the record is what keeps the labels with the node's identity.
func (s *Server) admitNode(ctx context.Context, nodeID string, req api.JoinRequest) error {
	if err := checkLabels("labels", req.Labels); err != nil {
		return err
	}
	n := &types.Node{ID: nodeID, Name: req.Name, Role: types.RoleWorker, Labels: req.Labels, Status: types.NodeDown}
	_, err := s.Commit(ctx, &state.UpsertNode{Node: n})
	return err
}

// maxLabels bounds how many labels a node carries.
const maxLabels = 64

// checkLabels validates labels to set on a node; field names them in errors.
func checkLabels(field string, labels map[string]string) error {
	if len(labels) > maxLabels {
		return badRequest(field, "at most %d labels, not %d", maxLabels, len(labels))
	}
	for k, v := range labels {
		if !types.ValidLabelKey(k) {
			return badRequest(field+"."+k, "invalid label key")
		}
		if len(v) > types.MaxLabelValue {
			return badRequest(field+"."+k, "value longer than %d bytes", types.MaxLabelValue)
		}
	}
	return nil
}

// heartbeat refreshes the node's TTL in memory; it writes to Raft only when
// a node that was down comes back.
func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) error {
	n := s.store.View().Node(r.PathValue("id"))
	if n == nil {
		return notFound("node %q is not registered; register it again", r.PathValue("id"))
	}
	s.beats.Beat(n.ID, s.clock.Now())
	if n.Status != types.NodeReady {
		if _, err := s.Commit(r.Context(), &state.SetNodeStatus{ID: n.ID, Status: types.NodeReady}); err != nil {
			return err
		}
		s.log.Info("node is back", "node", n.Name, "id", n.ID)
	}
	writeJSON(w, http.StatusOK, api.HeartbeatResponse{Managers: s.managerClusterAddrs(), HeartbeatTTL: s.heartbeatTTL()})
	return nil
}

// managerClusterAddrs are where agents can reach managers, for failover.
func (s *Server) managerClusterAddrs() []string {
	cl := s.store.View().Cluster()
	if cl == nil {
		return nil
	}
	out := make([]string, 0, len(cl.Managers))
	for _, m := range cl.Managers {
		out = append(out, m.ClusterAddr)
	}
	return out
}

// nodeTasks answers an agent's blocking query for what it must run.
func (s *Server) nodeTasks(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if s.store.View().Node(id) == nil {
		return notFound("node %q is not registered; register it again", id)
	}
	var known uint64
	if v := r.URL.Query().Get("known"); v != "" {
		var err error
		if known, err = strconv.ParseUint(v, 10, 64); err != nil {
			return badRequest("known", "want the index of the answer the node holds, a whole number; got %q", v)
		}
	}
	idx, err := s.block(r, state.NodeWork(id)...)
	if err != nil {
		return err
	}
	nt, err := s.buildNodeTasks(s.store.View(), id)
	if err != nil {
		return err
	}
	sinceKnown(nt, known)
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, nt)
	return nil
}

// sinceKnown leaves out of nt the tasks that have not changed since index
// known, which the agent holds, and lists every task's ID and version in
// Order so that it can make the answer whole (api.NodeTasks.Merge). The
// answer of changes is at least as fresh as the whole one: a task is left
// out only if its version is the one the agent has (its ModifyIndex is at
// or below known, and the agent's copy came from a view at known or
// later); Merge checks the versions, so an agent holding something else
// (another manager's answer from before a restore) asks again for all.
func sinceKnown(nt *api.NodeTasks, known uint64) {
	if known == 0 {
		return
	}
	order := make([]api.TaskRef, 0, len(nt.Tasks))
	changed := nt.Tasks[:0:0]
	for _, t := range nt.Tasks {
		order = append(order, api.TaskRef{ID: t.ID, ModifyIndex: t.ModifyIndex})
		if t.ModifyIndex > known {
			changed = append(changed, t)
		}
	}
	nt.Tasks, nt.Order, nt.Known = changed, order, known
}

// buildNodeTasks assembles a node's work: its placed tasks (not those of
// apps being removed: the agent stops and removes containers whose task it
// is no longer given), the current spec of their services, and the parts of
// their apps they use. Apps being removed are listed as Deleting until the
// node reports their teardown.
func (s *Server) buildNodeTasks(view *state.View, nodeID string) (*api.NodeTasks, error) {
	out := &api.NodeTasks{Tasks: []*types.Task{}, Services: map[string]*types.Service{}, Apps: map[string]*api.AppResources{}}
	pool := view.Pool()
	for _, t := range view.Tasks(state.TaskFilter{NodeID: nodeID}) {
		app := view.App(t.App)
		if app == nil || app.Deleting || t.State == types.TaskPending {
			continue
		}
		out.Tasks = append(out.Tasks, t)
		svc := app.Service(t.Service)
		if svc == nil {
			continue
		}
		out.Services[types.ServiceID(app.Name, svc.Name)] = svc
		res := out.Apps[app.Name]
		if res == nil {
			res = &api.AppResources{Networks: app.Networks, Volumes: app.Volumes, Secrets: map[string]*types.Secret{}, Configs: map[string]*types.Secret{}, Slices: map[string]string{}}
			out.Apps[app.Name] = res
		}
		for _, att := range svc.Networks {
			if slice, ok := pool.Slice(app.NetworkKey(att.Name), nodeID); ok { // not Slices: a map of every node's, per task
				res.Slices[att.Name] = slice.String()
			}
		}
		for _, ref := range svc.Secrets {
			sec, err := s.openSecret(app.Name, ref.Source, app.Secrets[ref.Source])
			if err != nil {
				return nil, err
			}
			res.Secrets[ref.Source] = sec
		}
		for _, ref := range svc.Configs {
			res.Configs[ref.Source] = app.Configs[ref.Source]
		}
	}
	for _, app := range view.Apps() {
		if app.Deleting && !slices.Contains(app.TornDownOn, nodeID) {
			out.Apps[app.Name] = &api.AppResources{Networks: app.Networks, Volumes: app.Volumes, Deleting: true, RemoveVolumes: app.RemoveVolumes}
		}
	}
	for _, rm := range view.VolumeRemovalsOn(nodeID) { // berth volume rm (networks.go)
		out.RemoveVolumes = append(out.RemoveVolumes, api.VolumeRef{App: rm.App, Name: rm.Name})
	}
	return out, nil
}

func (s *Server) nodeStatus(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if s.store.View().Node(id) == nil {
		return notFound("node %q is not registered; register it again", id)
	}
	var rep api.StatusReport
	if err := decodeJSON(w, r, api.MaxRequestBytes, &rep); err != nil {
		return err
	}
	if err := validateStatuses(rep.Tasks); err != nil {
		return err
	}
	s.beats.Beat(id, s.clock.Now())
	if len(rep.Tasks) > 0 {
		if err := s.reports.submit(r.Context(), state.TaskStatusUpdate{NodeID: id, Statuses: rep.Tasks, Now: s.clock.Now()}); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) teardownDone(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req api.TeardownDone
	if err := decodeJSON(w, r, api.MaxRequestBytes, &req); err != nil {
		return err
	}
	if req.App == "" {
		return badRequest("app", "required")
	}
	app := s.store.View().App(req.App)
	if app == nil || !app.Deleting || slices.Contains(app.TornDownOn, id) {
		writeJSON(w, http.StatusOK, struct{}{}) // already gone or recorded: nothing to do
		return nil
	}
	if _, err := s.Commit(r.Context(), &state.TeardownDone{App: req.App, NodeID: id, Now: s.clock.Now()}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}
