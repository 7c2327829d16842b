package types

import (
	"time"
)

// App is one deployed Compose project: the unit of `berth up` and `berth down`.
type App struct {
	Name     string              `json:"name"`
	Services []*Service          `json:"services"`
	Networks map[string]*Network `json:"networks,omitempty"`
	Volumes  map[string]*Volume  `json:"volumes,omitempty"`
	Secrets  map[string]*Secret  `json:"secrets,omitempty"`
	Configs  map[string]*Secret  `json:"configs,omitempty"`

	// Deleting is set by `down`: every task is shut down, then each agent
	// removes the app's networks (and named volumes with RemoveVolumes) and
	// says so; the app leaves the store when all have.
	Deleting      bool     `json:"deleting,omitempty"`
	RemoveVolumes bool     `json:"remove_volumes,omitempty"`
	TornDownOn    []string `json:"torn_down_on,omitempty"` // node IDs
	// StopGrace, when set, is down -t: how long each task has to stop.
	StopGrace time.Duration `json:"stop_grace,omitempty"`

	// Version counts the accepted submissions of this app that changed it.
	Version     uint64    `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// Service returns the named service, or nil.
func (a *App) Service(name string) *Service {
	for _, s := range a.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// NetworkKey is the cluster-wide name of the app's network name: the Docker
// network's name on every node and the overlay's key for it.
func (a *App) NetworkKey(name string) string { return NetworkKey(a.Name, a.Networks[name], name) }

// NetworkKey names network key of app (n may be nil): "<app>_<key>", or an
// external network's own name.
func NetworkKey(app string, n *Network, key string) string {
	if n != nil && n.External {
		if n.Name != "" {
			return n.Name
		}
		return key
	}
	return app + "_" + key
}

// Network is a Compose network: on the docker driver, one Docker network per
// app and network name, named "<app>_<network>" unless External.
type Network struct {
	Name     string            `json:"name"`
	Driver   string            `json:"driver,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	External bool              `json:"external,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Subnet is the one the Compose file chose (ipam.config[].subnet),
	// allocated as given; empty means one from the cluster's pool.
	Subnet string `json:"subnet,omitempty"`
}

// Volume is a Compose named volume: a Docker volume "<app>_<volume>" unless
// External. Named volumes outlive `down` unless `down -v`.
type Volume struct {
	Name       string            `json:"name"`
	Driver     string            `json:"driver,omitempty"`
	DriverOpts map[string]string `json:"driver_opts,omitempty"`
	External   bool              `json:"external,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// Secret is a secret or a config: content read by the CLI from the user's
// file (or environment) and mounted as a file in the task. Data is never
// printed by the CLI or logged by the manager.
type Secret struct {
	Name string `json:"name"`
	Data []byte `json:"data,omitempty"`
	// Digest is a keyed hash (HMAC-SHA256) of the plaintext, set by the manager, which
	// stores Data sealed: spec hashes compare digests, so an unchanged
	// secret does not roll its services although each sealing differs.
	Digest string `json:"digest,omitempty"`
	// External secrets must already exist in the cluster (not supported yet;
	// the compose loader reports them).
	External bool `json:"external,omitempty"`
}

// MaxSecretSize bounds one secret or config, as Swarm does (500 KiB).
const MaxSecretSize = 500 * 1024
