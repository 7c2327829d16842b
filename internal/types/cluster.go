package types

import "time"

// Cluster is the cluster's identity and credentials, one per cluster, in
// Raft. Nothing here is usable in plaintext: the CA key and the join tokens
// are sealed with the managers' sealing key, the admin token is hashed.
type Cluster struct {
	ID          string `json:"id"`
	CACertPEM   []byte `json:"ca_cert_pem"`
	CAKeySealed []byte `json:"ca_key_sealed"`
	// Join tokens, sealed, so managers can show them (`berth token`).
	WorkerTokenSealed  []byte `json:"worker_token_sealed"`
	ManagerTokenSealed []byte `json:"manager_token_sealed"`
	// AdminTokenHash is the SHA-256 of the admin token shown at bootstrap.
	AdminTokenHash string    `json:"admin_token_hash"`
	Managers       []Manager `json:"managers,omitempty"`
	// Revoked lists the nodes whose certificates no manager accepts any
	// more (`berth node rm`), each until no certificate issued to it
	// before its removal can still be valid.
	Revoked []Revocation `json:"revoked,omitempty"`
	// AddressPool is the overlay's address pool ("10.240.0.0/12"), set at
	// bootstrap (berth server --address-pool); "" is ipam's default.
	AddressPool string `json:"address_pool,omitempty"`
	// AddressSlice is the prefix length of a node's slice of a network
	// (berth server --address-slice), set at bootstrap; 0 is ipam's
	// default.
	AddressSlice int       `json:"address_slice,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	ModifyIndex  uint64    `json:"modify_index"`
}

// Manager is one manager's addresses, as other nodes dial them.
type Manager struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	RaftAddr    string `json:"raft_addr"`
	APIAddr     string `json:"api_addr"`
	ClusterAddr string `json:"cluster_addr"`
}

// Revocation is one revoked node ID. Node IDs are never issued again, so
// the ID alone revokes every certificate of the node, renewed ones too.
type Revocation struct {
	NodeID    string    `json:"node_id"`
	RevokedAt time.Time `json:"revoked_at"`
	// Until is when the entry may go: later than any certificate issued
	// before RevokedAt expires.
	Until time.Time `json:"until"`
}

// IsRevoked reports whether the node's certificates are revoked.
func (c *Cluster) IsRevoked(nodeID string) bool {
	for _, r := range c.Revoked {
		if r.NodeID == nodeID {
			return true
		}
	}
	return false
}

// Manager returns the manager with the given ID, or nil.
func (c *Cluster) Manager(id string) *Manager {
	for i := range c.Managers {
		if c.Managers[i].ID == id {
			return &c.Managers[i]
		}
	}
	return nil
}
