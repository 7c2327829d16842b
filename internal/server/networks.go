package server

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// Networks and volumes as users see them (`berth network`, `berth
// volume`): cluster networks are records of their own (state
// apply_network.go); app networks and volumes are read from the apps, the
// overlay's pool and the volume pins.

// maxNetworkLabels bounds a cluster network's labels.
const maxNetworkLabels = 64

// dockerNetworks are the networks every engine has: a cluster network of
// one of these names would be each node's own.
var dockerNetworks = []string{"bridge", "host", "none"}

func (s *Server) listNetworks(w http.ResponseWriter, _ *http.Request) error {
	v := s.store.View()
	out := []api.Network{}
	for _, key := range v.Pool().NetworkIDs() {
		out = append(out, networkOut(v, key))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getNetwork(w http.ResponseWriter, r *http.Request) error {
	v := s.store.View()
	name := r.PathValue("name")
	if _, ok := v.Pool().Subnet(name); !ok {
		return notFound("no network named %q; berth network ls lists them", name)
	}
	writeJSON(w, http.StatusOK, networkOut(v, name))
	return nil
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) error {
	var in api.NetworkCreate
	if err := decodeJSON(w, r, api.MaxRequestBytes, &in); err != nil {
		return err
	}
	if !nameRE.MatchString(in.Name) {
		return badRequest("name", "%q is not a valid network name: use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63 characters", in.Name)
	}
	if slices.Contains(dockerNetworks, in.Name) {
		return badRequest("name", "%q is one of the networks every Docker engine has: choose another name", in.Name)
	}
	if len(in.Labels) > maxNetworkLabels {
		return badRequest("labels", "at most %d labels", maxNetworkLabels)
	}
	for k := range in.Labels {
		if k == "" || strings.HasPrefix(k, "berth.") {
			return badRequest("labels", "label %q: keys must be non-empty and not start with berth. (berth's own)", k)
		}
	}
	res, err := s.Commit(r.Context(), &state.CreateNetwork{Name: in.Name, Subnet: in.Subnet, Internal: in.Internal, Labels: in.Labels, Now: s.clock.Now()})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, networkOut(s.store.View(), res.(*types.ClusterNetwork).Name))
	return nil
}

func (s *Server) deleteNetwork(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	v := s.store.View()
	if v.ClusterNetwork(name) == nil {
		if owner := networkOwner(v.Apps(), name); owner != "" {
			return &apiError{status: http.StatusConflict, msg: fmt.Sprintf("network %s is app %s's own network: it goes with the app (berth down -p %s)", name, owner, owner)}
		}
	}
	if _, err := s.Commit(r.Context(), &state.DeleteNetwork{Name: name}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// networkOwner names the app whose own network key is, or "".
func networkOwner(apps []*types.App, key string) string {
	owner, _ := networkFacts(apps) // netmap.go
	return owner[key]
}

// networkOut describes the pool's network key.
func networkOut(v *state.View, key string) api.Network {
	pool := v.Pool()
	subnet, _ := pool.Subnet(key)
	n := api.Network{Name: key, Scope: api.ScopeApp, Subnet: subnet.String(), Slices: map[string]string{}}
	apps := v.Apps()
	owner, internal := networkFacts(apps)
	n.App, n.Internal = owner[key], internal[key]
	if cn := v.ClusterNetwork(key); cn != nil {
		n.Scope, n.Internal, n.Labels = api.ScopeCluster, cn.Internal, cn.Labels
		n.Apps = v.NetworkUsers(key)
		created := cn.CreatedAt
		n.Created = &created
	} else if n.App == "" {
		// Allocated for an external network before cluster networks were
		// records: `berth network create` adopts it with its subnet.
		n.Scope = api.ScopeCluster
	}
	for node, slice := range pool.Slices(key) {
		n.Slices[nodeName(v, node)] = slice.String()
	}
	for _, app := range apps {
		for _, svc := range app.Services {
			if slices.ContainsFunc(svc.Networks, func(a types.NetworkAttachment) bool { return app.NetworkKey(a.Name) == key }) {
				n.Services = append(n.Services, types.ServiceID(app.Name, svc.Name))
			}
		}
	}
	slices.Sort(n.Services)
	return n
}

// nodeName names a node for users: its name, or its ID when it has none
// or is gone.
func nodeName(v *state.View, id string) string {
	if n := v.Node(id); n != nil && n.Name != "" {
		return n.Name
	}
	return id
}

func (s *Server) listVolumes(w http.ResponseWriter, _ *http.Request) error {
	v := s.store.View()
	vols := v.Volumes()
	out := make([]api.Volume, 0, len(vols))
	for _, name := range slices.Sorted(maps.Keys(vols)) {
		out = append(out, volumeOut(v, vols[name]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getVolume(w http.ResponseWriter, r *http.Request) error {
	v := s.store.View()
	vol := v.Volumes()[r.PathValue("name")]
	if vol == nil {
		return notFound("no volume named %q; berth volume ls lists them", r.PathValue("name"))
	}
	writeJSON(w, http.StatusOK, volumeOut(v, vol))
	return nil
}

// removeVolume starts removing a volume from every node holding a copy;
// the answer lists the nodes yet to do it.
func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) error {
	res, err := s.Commit(r.Context(), &state.RemoveVolume{Name: r.PathValue("name"), Now: s.clock.Now()})
	if err != nil {
		return err
	}
	v := s.store.View()
	out := api.Volume{Name: r.PathValue("name")}
	if vol := v.Volumes()[out.Name]; vol != nil {
		out = volumeOut(v, vol)
	} else if rm, _ := res.(*types.VolumeRemoval); rm != nil { // removed at once: no node had it
		out.App, out.Key = rm.App, rm.Key
	}
	writeJSON(w, http.StatusAccepted, out)
	return nil
}

// volumeRemoved records that the calling node removed its copy.
func (s *Server) volumeRemoved(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.Commit(r.Context(), &state.VolumeRemoved{NodeID: r.PathValue("id"), Name: r.PathValue("name")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func volumeOut(v *state.View, vol *state.VolumeInfo) api.Volume {
	out := api.Volume{Name: vol.Name, App: vol.App, Key: vol.Key, Driver: vol.Driver, External: vol.External}
	for _, p := range vol.Pins {
		out.Replicas = append(out.Replicas, api.VolumeReplica{Replica: p.Replica(), Node: nodeName(v, p.NodeID)})
	}
	for _, t := range vol.Tasks {
		out.Tasks = append(out.Tasks, t.ID)
	}
	if vol.Removal != nil {
		for _, id := range vol.Removal.Nodes {
			out.Removing = append(out.Removing, nodeName(v, id))
		}
	}
	return out
}
