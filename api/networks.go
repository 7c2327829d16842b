package api

import (
	"context"
	"net/http"
	"time"
)

// Network and volume routes (`berth network`, `berth volume`).
const (
	PathNetworks = "/v1/networks"        // GET []Network (app and cluster networks); POST NetworkCreate: the Network
	PathNetwork  = "/v1/networks/{name}" // GET Network; DELETE (409 while an app declares it)
	PathVolumes  = "/v1/volumes"         // GET []Volume
	PathVolume   = "/v1/volumes/{name}"  // GET Volume; DELETE: 202 Volume (409 while a task mounts it)
	// PathVolumeRemoved is a node's report that it removed its copy.
	PathVolumeRemoved = "/v1/nodes/{id}/volumes/{name}/removed" // POST
)

// Network scopes.
const (
	ScopeCluster = "cluster" // made with `berth network create`, joined as external
	ScopeApp     = "app"     // an app's own, "<app>_<key>", removed with the app
)

// NetworkCreate is the body of POST /v1/networks. Subnet is optional: the
// cluster's address pool gives one when it is empty.
type NetworkCreate struct {
	Name     string            `json:"name"`
	Subnet   string            `json:"subnet,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// Network is one overlay network as users see it.
type Network struct {
	Name  string `json:"name"`
	Scope string `json:"scope"` // ScopeCluster or ScopeApp
	// App owns an app network; Apps are those that declare a cluster
	// network external.
	App      string            `json:"app,omitempty"`
	Apps     []string          `json:"apps,omitempty"`
	Subnet   string            `json:"subnet"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Slices are the nodes' slices of the subnet, by node name (or ID
	// when the node is gone).
	Slices map[string]string `json:"slices,omitempty"`
	// Services are the services attached, as "<app>/<service>", sorted.
	Services []string   `json:"services,omitempty"`
	Created  *time.Time `json:"created,omitempty"`
}

// Networks lists every network the overlay holds, sorted by name.
func (c *Client) Networks(ctx context.Context) ([]Network, error) {
	var ns []Network
	_, err := c.do(ctx, http.MethodGet, PathNetworks, nil, nil, &ns)
	return ns, err
}

// Network returns one network; errors.Is(err, ErrNotFound) when there is
// none.
func (c *Client) Network(ctx context.Context, name string) (*Network, error) {
	var n Network
	if _, err := c.do(ctx, http.MethodGet, fill(PathNetwork, name), nil, nil, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// CreateNetwork makes a cluster network.
func (c *Client) CreateNetwork(ctx context.Context, req NetworkCreate) (*Network, error) {
	var n Network
	if _, err := c.do(ctx, http.MethodPost, PathNetworks, nil, req, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// RemoveNetwork removes a cluster network; the error is a 409 naming the
// apps while one declares it.
func (c *Client) RemoveNetwork(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, fill(PathNetwork, name), nil, nil, nil)
	return err
}

// Volume is one named volume of an app: the Docker volume Name on each
// node that holds a replica's copy.
type Volume struct {
	Name     string `json:"name"` // "<app>_<key>", or an external volume's own name
	App      string `json:"app"`
	Key      string `json:"key"` // its name in the Compose file
	Driver   string `json:"driver"`
	External bool   `json:"external,omitempty"`
	// Replicas say which node holds each replica's copy (from the volume
	// pins), sorted by replica.
	Replicas []VolumeReplica `json:"replicas,omitempty"`
	// Tasks are the unfinished tasks that mount it, sorted.
	Tasks []string `json:"tasks,omitempty"`
	// Removing lists the nodes yet to remove their copy after `berth
	// volume rm`.
	Removing []string `json:"removing,omitempty"`
}

// VolumeReplica is where one replica's copy of a volume is.
type VolumeReplica struct {
	Replica string `json:"replica"` // "<service>.<slot>"
	Node    string `json:"node"`    // name, or ID when the node is gone
}

// Volumes lists the named volumes of every app, sorted by name.
func (c *Client) Volumes(ctx context.Context) ([]Volume, error) {
	var vs []Volume
	_, err := c.do(ctx, http.MethodGet, PathVolumes, nil, nil, &vs)
	return vs, err
}

// Volume returns one volume by its Docker name; errors.Is(err,
// ErrNotFound) when there is none.
func (c *Client) Volume(ctx context.Context, name string) (*Volume, error) {
	var v Volume
	if _, err := c.do(ctx, http.MethodGet, fill(PathVolume, name), nil, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// RemoveVolume removes a named volume from every node that holds a copy:
// the answer lists those yet to do it (Removing). A 409 names the tasks
// while any mounts it.
func (c *Client) RemoveVolume(ctx context.Context, name string) (*Volume, error) {
	var v Volume
	if _, err := c.do(ctx, http.MethodDelete, fill(PathVolume, name), nil, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ReportVolumeRemoved tells the manager this node removed its copy of a
// volume (agents only).
func (c *Client) ReportVolumeRemoved(ctx context.Context, nodeID, name string) error {
	_, err := c.do(ctx, http.MethodPost, fill(PathVolumeRemoved, nodeID, name), nil, nil, nil)
	return err
}
