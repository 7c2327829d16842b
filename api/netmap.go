package api

import "context"

// PathNetworkMap is the cluster's overlay as every agent needs it: GET
// NetworkMap (agents, blocking on ?index=).
const PathNetworkMap = "/v1/netmap"

// NetworkMap is what an agent needs to route, resolve and balance for the
// whole cluster: every cluster network with every node's slice, every node's
// underlay address, and every service on a network with its virtual
// addresses, published ports and serving replicas. It is replaced whole on
// every change (agents Apply it; they keep no state of their own).
type NetworkMap struct {
	// Pool is the cluster's address pool ("10.240.0.0/12").
	Pool     string       `json:"pool"`
	Networks []MapNetwork `json:"networks"`
	Nodes    []MapNode    `json:"nodes"`
	Services []MapService `json:"services"`
}

// MapNetwork is one cluster network.
type MapNetwork struct {
	// Key names the network on every node: the Docker network name,
	// "<app>_<network>" or an external network's own name.
	Key      string `json:"key"`
	App      string `json:"app,omitempty"` // "" for an external network
	Subnet   string `json:"subnet"`        // "10.240.0.0/18"
	Internal bool   `json:"internal,omitempty"`
	// Slices maps node IDs to their slice of Subnet ("10.240.1.0/24"):
	// a node has one once a task of the network was placed on it.
	Slices map[string]string `json:"slices"`
}

// MapNode is a node as the overlay reaches it.
type MapNode struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Underlay is the IPv4 address the node's VXLAN packets come from and
	// go to (the host part of the node's own address).
	Underlay string `json:"underlay"`
	Ready    bool   `json:"ready"`
}

// MapService is a service that is on at least one network, or publishes a
// port.
type MapService struct {
	App          string          `json:"app"`
	Name         string          `json:"name"`
	EndpointMode string          `json:"endpoint_mode,omitempty"` // types.EndpointVIP or EndpointDNSRR
	Networks     []MapAttachment `json:"networks,omitempty"`
	Ports        []MapPort       `json:"ports,omitempty"`
	// Mesh and ProxyProtocol are the service's types.MeshLocal and
	// types.ProxyV2 settings for its published ports.
	Mesh          string        `json:"mesh,omitempty"`
	ProxyProtocol string        `json:"proxy_protocol,omitempty"`
	Endpoints     []MapEndpoint `json:"endpoints,omitempty"`
}

// MapAttachment is a service on one network.
type MapAttachment struct {
	Network string   `json:"network"` // MapNetwork.Key
	Aliases []string `json:"aliases,omitempty"`
	VIP     string   `json:"vip,omitempty"` // "" in dnsrr mode
}

// MapPort is a port of a service: published (Published > 0) in Mode, or
// only a target the VIP balances.
type MapPort struct {
	Target    uint16 `json:"target"`
	Published uint16 `json:"published,omitempty"`
	Protocol  string `json:"protocol"`       // "tcp" or "udp"
	Mode      string `json:"mode,omitempty"` // types.PortIngress or PortHost
	// HostIP is the address the port is published on ("127.0.0.1"); ""
	// is every address. The mesh listens on it on every node, so a
	// loopback one answers only on each node itself.
	HostIP string `json:"host_ip,omitempty"`
}

// MapEndpoint is one serving replica (types.Task.Serving): running,
// healthy and not told to stop.
type MapEndpoint struct {
	TaskID string `json:"task_id"`
	Slot   int    `json:"slot"`
	NodeID string `json:"node_id"`
	// Name is the task's name ("<app>-<service>-<slot>").
	Name string `json:"name"`
	// Addresses by MapNetwork.Key.
	Addresses map[string]string `json:"addresses"`
}

// NetworkMap returns the cluster's network map; with q.Index it blocks
// until the map changed past that index or q.Wait passed.
func (c *Client) NetworkMap(ctx context.Context, q QueryOptions) (*NetworkMap, QueryMeta, error) {
	var m NetworkMap
	meta, err := c.do(ctx, "GET", PathNetworkMap, q.values(), nil, &m)
	return &m, meta, err
}
