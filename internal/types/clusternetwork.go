package types

import "time"

// ClusterNetwork is a network made with `berth network create`: shared by
// the apps that declare it external in their Compose file, owned by none,
// so no app's `down` removes it. Its subnet (and every node's slice of it)
// is in the overlay's pool under its Name, as an app network's is under
// "<app>_<key>".
type ClusterNetwork struct {
	Name     string            `json:"name"`
	Subnet   string            `json:"subnet"` // as allocated
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Chosen is true when the user gave the subnet (--subnet).
	Chosen bool `json:"chosen,omitempty"`

	CreatedAt   time.Time `json:"created_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// MaxNetworkNameLen bounds a cluster network's name: it is a Docker
// network's name on every node.
const MaxNetworkNameLen = 64

// VolumeRemoval is a named volume `berth volume rm` removes: each node in
// Nodes removes its copy (the Docker volume Name) and says so, leaving
// the list; the record goes with the last.
type VolumeRemoval struct {
	Name        string    `json:"name"`
	App         string    `json:"app"`
	Key         string    `json:"key"`   // its name in the Compose file
	Nodes       []string  `json:"nodes"` // node IDs yet to remove it, sorted
	CreatedAt   time.Time `json:"created_at"`
	CreateIndex uint64    `json:"create_index"`
}
