package server

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/ipam"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// netMap answers an agent's blocking query for the cluster's overlay. It
// wakes on any change of apps, tasks, nodes or allocations; the map is
// rebuilt whole, and agents skip one equal to the last they applied.
func (s *Server) netMap(w http.ResponseWriter, r *http.Request) error {
	idx, err := s.block(r, state.TableApps, state.TableTasks, state.TableNodes, state.TableNetPool)
	if err != nil {
		return err
	}
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, buildNetMap(s.store.View()))
	return nil
}

// buildNetMap assembles the network map from the store.
func buildNetMap(view *state.View) *api.NetworkMap {
	pool := view.Pool()
	out := &api.NetworkMap{Pool: pool.Config.Pool.String(), Networks: []api.MapNetwork{}, Nodes: []api.MapNode{}, Services: []api.MapService{}}
	owner, internal := networkFacts(view.Apps())
	for _, key := range pool.NetworkIDs() {
		subnet, _ := pool.Subnet(key)
		n := api.MapNetwork{Key: key, App: owner[key], Subnet: subnet.String(), Internal: internal[key], Slices: map[string]string{}}
		for node, slice := range pool.Slices(key) {
			n.Slices[node] = slice.String()
		}
		out.Networks = append(out.Networks, n)
	}
	for _, n := range view.Nodes() {
		out.Nodes = append(out.Nodes, api.MapNode{ID: n.ID, Name: n.Name, Underlay: underlay(n.Address), Ready: n.Status == types.NodeReady})
	}
	serving := servingTasks(view)
	for _, app := range view.Apps() {
		if app.Deleting {
			continue
		}
		for _, svc := range app.Services {
			if ms, ok := mapService(pool, app, svc, serving[types.ServiceID(app.Name, svc.Name)]); ok {
				out.Services = append(out.Services, ms)
			}
		}
	}
	return out
}

// networkFacts tells, per network key, which app owns it ("" for an
// external one) and whether it is internal.
func networkFacts(apps []*types.App) (owner map[string]string, internal map[string]bool) {
	owner, internal = map[string]string{}, map[string]bool{}
	for _, app := range apps {
		for name, n := range app.Networks {
			key := app.NetworkKey(name)
			if n == nil || !n.External {
				owner[key] = app.Name
			}
			if n != nil && n.Internal {
				internal[key] = true
			}
		}
	}
	return owner, internal
}

// servingTasks groups the tasks DNS and the mesh send traffic to by
// service ID.
func servingTasks(view *state.View) map[string][]*types.Task {
	out := map[string][]*types.Task{}
	for _, t := range view.Tasks(state.TaskFilter{}) {
		if t.DesiredState != types.DesiredRunning || t.State != types.TaskRunning {
			continue // cheap filter before the app lookup; Serving decides
		}
		app := view.App(t.App)
		if app == nil {
			continue
		}
		svc := app.Service(t.Service)
		if svc == nil {
			continue
		}
		// A replica of an older version is judged by its own kind: the new
		// spec may add a health check the old replicas never report, and
		// they serve until the rollout replaces them.
		judge := svc
		if t.ServiceVersion != svc.Version {
			judge = nil
		}
		if t.Serving(judge) {
			id := types.ServiceID(t.App, t.Service)
			out[id] = append(out[id], t)
		}
	}
	return out
}

// mapService is svc as the overlay sees it; ok is false for a service on
// no network that publishes nothing.
func mapService(pool *ipam.Pool, app *types.App, svc *types.Service, tasks []*types.Task) (api.MapService, bool) {
	ms := api.MapService{App: app.Name, Name: svc.Name, EndpointMode: svc.EndpointMode, Mesh: svc.Mesh, ProxyProtocol: svc.ProxyProtocol}
	id := types.ServiceID(app.Name, svc.Name)
	for _, att := range svc.Networks {
		key := app.NetworkKey(att.Name)
		a := api.MapAttachment{Network: key, Aliases: att.Aliases}
		if vip, ok := pool.VIP(key, id); ok {
			a.VIP = vip.String()
		}
		ms.Networks = append(ms.Networks, a)
	}
	for _, p := range svc.Ports {
		ms.Ports = append(ms.Ports, api.MapPort{Target: p.Target, Published: p.Published, Protocol: p.Protocol, Mode: p.Mode, HostIP: p.HostIP})
	}
	if len(ms.Networks) == 0 && len(ms.Ports) == 0 {
		return ms, false
	}
	for _, t := range tasks {
		ms.Endpoints = append(ms.Endpoints, api.MapEndpoint{TaskID: t.ID, Slot: t.Slot, NodeID: t.NodeID, Name: t.Name(), Addresses: t.Addresses})
	}
	slices.SortFunc(ms.Endpoints, func(a, b api.MapEndpoint) int {
		return cmp.Or(cmp.Compare(a.Slot, b.Slot), cmp.Compare(a.TaskID, b.TaskID))
	})
	return ms, true
}

// underlay is the IPv4 host part of a node's "host:port" address, or "".
func underlay(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return ""
	}
	return a.String()
}

// checkIngressPorts refuses a published port another app already
// publishes when either side is an ingress port: the routing mesh listens
// on it on every node, so it is the cluster's, not one node's.
func checkIngressPorts(apps []*types.App, app *types.App) error {
	type use struct {
		who     string
		ingress bool
	}
	taken := map[string]use{}
	for _, other := range apps {
		if other.Name == app.Name || other.Deleting {
			continue
		}
		for _, svc := range other.Services {
			for _, p := range svc.Ports {
				if p.Published != 0 {
					k := fmt.Sprintf("%d/%s", p.Published, p.Protocol)
					if u, ok := taken[k]; !ok || !u.ingress {
						taken[k] = use{who: "service " + svc.Name + " of app " + other.Name, ingress: p.Mode == types.PortIngress}
					}
				}
			}
		}
	}
	for _, svc := range app.Services {
		for i, p := range svc.Ports {
			k := fmt.Sprintf("%d/%s", p.Published, p.Protocol)
			if u, ok := taken[k]; ok && p.Published != 0 && (u.ingress || p.Mode == types.PortIngress) {
				return &apiError{status: http.StatusConflict, field: fmt.Sprintf("services.%s.ports[%d].published", svc.Name, i),
					msg: fmt.Sprintf("port %s is already published by %s, and the routing mesh takes a port on every node; choose another port or use mode: host on both", k, u.who)}
			}
		}
	}
	return nil
}
