package types

import "time"

// Node roles.
const (
	RoleManager = "manager"
	RoleWorker  = "worker"
)

// NodeStatus is what the manager last observed of a node.
type NodeStatus string

const (
	NodeReady NodeStatus = "ready"
	NodeDown  NodeStatus = "down"
)

// Availability is what operators ask of a node.
type Availability string

const (
	AvailabilityActive Availability = "active"
	AvailabilityDrain  Availability = "drain"
)

// Node is one host running an agent.
type Node struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Address is the agent's own API (logs), "host:port".
	Address string `json:"address"`
	// Overlay says the node's agent serves the cluster overlay, DNS and
	// the routing mesh (agent --overlay): ingress ports are then the mesh's,
	// not the task's, and bind nothing on its host.
	Overlay      bool              `json:"overlay,omitempty"`
	Role         string            `json:"role"`
	Labels       map[string]string `json:"labels,omitempty"`
	Capacity     ResourceAmounts   `json:"capacity"`
	Drivers      []string          `json:"drivers"`
	Status       NodeStatus        `json:"status"`
	Availability Availability      `json:"availability"`
	AgentVersion string            `json:"agent_version,omitempty"`

	// LastHeartbeat lives in the leader's memory, not in Raft; the API fills
	// it in on reads.
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
	CreateIndex   uint64    `json:"create_index"`
	ModifyIndex   uint64    `json:"modify_index"`
}

// HasDriver reports whether the node offers the named driver.
func (n *Node) HasDriver(name string) bool {
	for _, d := range n.Drivers {
		if d == name {
			return true
		}
	}
	return false
}
