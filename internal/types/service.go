package types

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Service modes.
const (
	ModeReplicated = "replicated"
	ModeGlobal     = "global"
)

// Driver names.
const (
	DriverDocker = "docker"
	DriverExec   = "exec"
	DriverSim    = "sim"
)

// Pull policies (Compose's pull_policy; "if_not_present" is PullMissing).
const (
	PullMissing = "missing"
	PullAlways  = "always"
	PullNever   = "never"
	PullBuild   = "build"
)

// Service is one Compose service: the template for its tasks.
type Service struct {
	Name string `json:"name"`
	// Driver runs the tasks: "docker" (default) or "exec" (x-berth-driver).
	Driver string `json:"driver,omitempty"`

	Image string `json:"image,omitempty"`
	// ImageID is the local image ID the CLI resolved after a build, so a
	// rebuilt image under the same tag changes the spec and rolls the service.
	ImageID string `json:"image_id,omitempty"`
	// ClusterImage is where the nodes pull the image from when the CLI
	// pushed it to the cluster's own registry (a build, or a local-only
	// image): "REPO@sha256:HEX", relative to that registry. Each agent
	// pulls it through its own endpoint on the host's loopback, so the
	// reference names no one manager. Empty: the nodes pull Image as it is.
	ClusterImage string `json:"cluster_image,omitempty"`
	// PullPolicy is Compose's pull_policy as the nodes apply it: "" or
	// PullMissing (pull when the node lacks the image), PullAlways,
	// PullNever (the node must hold it), PullBuild (the CLI always builds;
	// nodes pull the pushed result).
	PullPolicy string            `json:"pull_policy,omitempty"`
	Build      *Build            `json:"build,omitempty"`
	Command    []string          `json:"command,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	User       string            `json:"user,omitempty"`
	Hostname   string            `json:"hostname,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"` // container labels
	// DeployLabels are deploy.labels: labels of the service, not its containers.
	DeployLabels map[string]string `json:"deploy_labels,omitempty"`

	Ports  []Port   `json:"ports,omitempty"`
	Expose []string `json:"expose,omitempty"`

	Mode     string `json:"mode"`     // ModeReplicated or ModeGlobal
	Replicas int    `json:"replicas"` // replicated mode only

	Resources     Resources     `json:"resources"`
	RestartPolicy RestartPolicy `json:"restart_policy"`
	Healthcheck   *Healthcheck  `json:"healthcheck,omitempty"`
	DependsOn     []Dependency  `json:"depends_on,omitempty"`
	Placement     Placement     `json:"placement"`

	Mounts   []Mount             `json:"mounts,omitempty"`
	Secrets  []FileRef           `json:"secrets,omitempty"`
	Configs  []FileRef           `json:"configs,omitempty"`
	Networks []NetworkAttachment `json:"networks,omitempty"`
	// EndpointMode is deploy.endpoint_mode: EndpointVIP (""), one stable
	// virtual address per network that the node balances, or EndpointDNSRR,
	// DNS answers with the serving replicas' own addresses.
	EndpointMode string `json:"endpoint_mode,omitempty"`
	// Mesh is x-berth-mesh: "" balances a published port over every serving
	// replica; MeshLocal only over those on the node that took the
	// connection (the client address is kept, as Kubernetes'
	// externalTrafficPolicy: Local).
	Mesh string `json:"mesh,omitempty"`
	// ProxyProtocol is x-berth-proxy-protocol: "v2" starts each connection
	// the mesh relays to the service with a PROXY protocol v2 header.
	ProxyProtocol string `json:"proxy_protocol,omitempty"`
	// DrainDelay is x-berth-drain-delay: how long a stopping replica stays
	// out of every node's DNS and mesh before its stop signal (0: the
	// default, DefaultDrainDelay).
	DrainDelay time.Duration `json:"drain_delay,omitempty"`

	// UpdateConfig and RollbackConfig are deploy.update_config and
	// deploy.rollback_config: how a new version (or a rollback) rolls out.
	// They are not hashed: changing only them rolls nothing.
	UpdateConfig   *UpdateConfig `json:"update_config,omitempty"`
	RollbackConfig *UpdateConfig `json:"rollback_config,omitempty"`
	// Canary is x-berth-update (not hashed either).
	Canary *Canary `json:"canary,omitempty"`

	StopGracePeriod time.Duration `json:"stop_grace_period,omitempty"`
	StopSignal      string        `json:"stop_signal,omitempty"`

	// Container options passed through to the docker driver as they are.
	Tty        bool              `json:"tty,omitempty"`
	StdinOpen  bool              `json:"stdin_open,omitempty"`
	Privileged bool              `json:"privileged,omitempty"`
	Init       bool              `json:"init,omitempty"`
	ReadOnly   bool              `json:"read_only,omitempty"`
	CapAdd     []string          `json:"cap_add,omitempty"`
	CapDrop    []string          `json:"cap_drop,omitempty"`
	ExtraHosts []string          `json:"extra_hosts,omitempty"` // "host:ip"
	DNS        []string          `json:"dns,omitempty"`
	Tmpfs      []string          `json:"tmpfs,omitempty"`
	ShmSize    int64             `json:"shm_size,omitempty"`
	Sysctls    map[string]string `json:"sysctls,omitempty"`

	// Version is the spec version, bumped by the manager when SpecHash changes.
	Version  uint64 `json:"version"`
	SpecHash string `json:"spec_hash,omitempty"`
	// Status is the controller's verdict on this version (observed state,
	// not spec: it is not hashed, and a submission drops it).
	Status *ServiceStatus `json:"status,omitempty"`
	// Lifecycle is what berth stop, start and restart asked (lifecycle.go):
	// not hashed, dropped by a submission.
	Lifecycle *Lifecycle `json:"lifecycle,omitempty"`
	// OneOff marks a service berth run made (oneoff.go): not in the
	// Compose file, never an orphan, removed by berth run --rm, rm or down.
	OneOff *OneOff `json:"one_off,omitempty"`
}

// Build is a Compose build section. The CLI builds on its local engine; the
// manager never sees a build context.
type Build struct {
	Context    string            `json:"context"`
	Dockerfile string            `json:"dockerfile,omitempty"`
	Args       map[string]string `json:"args,omitempty"`
	Target     string            `json:"target,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// Port is one published or exposed port.
type Port struct {
	Target    uint16 `json:"target"`
	Published uint16 `json:"published,omitempty"` // 0: not published on the host
	Protocol  string `json:"protocol"`            // "tcp" or "udp"
	HostIP    string `json:"host_ip,omitempty"`
	// Mode is PortIngress ("": every node's mesh answers) or PortHost (only
	// the task's node, through Docker's own publishing, as in Swarm).
	Mode string `json:"mode,omitempty"`
}

// Endpoint modes, port modes and mesh policies of a service.
const (
	EndpointVIP   = ""
	EndpointDNSRR = "dnsrr"
	PortIngress   = ""
	PortHost      = "host"
	MeshLocal     = "local"
	ProxyV2       = "v2"
)

// DefaultDrainDelay is how long a stopping replica is out of DNS and the
// mesh before its stop signal, unless the service says otherwise.
const DefaultDrainDelay = time.Second

// Drain is the service's drain delay.
func (s *Service) Drain() time.Duration {
	if s.DrainDelay > 0 {
		return s.DrainDelay
	}
	return DefaultDrainDelay
}

// Resources are CPU in nano-CPUs (1e9 = one core) and memory in bytes.
type Resources struct {
	Limits       ResourceAmounts `json:"limits"`
	Reservations ResourceAmounts `json:"reservations"`
}

// ResourceAmounts is an amount of CPU and memory; zero means none given.
type ResourceAmounts struct {
	NanoCPUs    int64 `json:"nano_cpus,omitempty"`
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	Pids        int64 `json:"pids,omitempty"`
}

// Add returns the sum of two amounts.
func (r ResourceAmounts) Add(o ResourceAmounts) ResourceAmounts {
	return ResourceAmounts{NanoCPUs: r.NanoCPUs + o.NanoCPUs, MemoryBytes: r.MemoryBytes + o.MemoryBytes, Pids: r.Pids + o.Pids}
}

// Restart conditions, as deploy.restart_policy.condition names them.
const (
	RestartNone      = "none"
	RestartOnFailure = "on-failure"
	RestartAny       = "any"
)

// RestartPolicy says when a finished task is replaced. The default (nothing
// given in the Compose file) is on-failure: a crashed or killed task comes
// back, a one-shot task that exits 0 is done.
type RestartPolicy struct {
	Condition   string        `json:"condition"`
	Delay       time.Duration `json:"delay,omitempty"`
	MaxAttempts int           `json:"max_attempts,omitempty"` // 0: unlimited
	Window      time.Duration `json:"window,omitempty"`
}

// Healthcheck is a Compose healthcheck. Test is in Compose form:
// ["CMD", args...], ["CMD-SHELL", "cmd"] or ["NONE"].
type Healthcheck struct {
	Test          []string      `json:"test,omitempty"`
	Interval      time.Duration `json:"interval,omitempty"`
	Timeout       time.Duration `json:"timeout,omitempty"`
	StartPeriod   time.Duration `json:"start_period,omitempty"`
	StartInterval time.Duration `json:"start_interval,omitempty"`
	Retries       int           `json:"retries,omitempty"`
	Disable       bool          `json:"disable,omitempty"`
}

// depends_on conditions.
const (
	ConditionStarted   = "service_started"
	ConditionHealthy   = "service_healthy"
	ConditionCompleted = "service_completed_successfully"
)

// Dependency is one depends_on entry.
type Dependency struct {
	Service   string `json:"service"`
	Condition string `json:"condition"`
	Required  bool   `json:"required"`
}

// Placement holds deploy.placement and max_replicas_per_node.
type Placement struct {
	Constraints        []string `json:"constraints,omitempty"` // "node.labels.zone==a"
	Preferences        []string `json:"preferences,omitempty"` // spread descriptors: "node.labels.zone"
	MaxReplicasPerNode int      `json:"max_replicas_per_node,omitempty"`
}

// Mount types.
const (
	MountBind   = "bind"
	MountVolume = "volume"
	MountTmpfs  = "tmpfs"
)

// Mount is one volumes entry of a service. For MountVolume, Source names a
// volume of the App (or is empty for an anonymous volume).
type Mount struct {
	Type     string `json:"type"`
	Source   string `json:"source,omitempty"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// FileRef mounts a secret or config of the App as a file in the task.
type FileRef struct {
	Source string `json:"source"`
	Target string `json:"target"` // absolute path in the container
	UID    string `json:"uid,omitempty"`
	GID    string `json:"gid,omitempty"`
	Mode   uint32 `json:"mode,omitempty"` // 0: 0444
}

// NetworkAttachment joins a service to an App network. The service name is
// always an alias; Aliases adds more.
type NetworkAttachment struct {
	Name    string   `json:"name"`
	Aliases []string `json:"aliases,omitempty"`
}

// ComputeSpecHash hashes what decides whether running tasks must be replaced:
// everything but Replicas, Version, SpecHash, Status, Lifecycle and the update,
// rollback and canary configs, plus the content of the
// secrets and configs the service mounts (a changed secret rolls the service).
func (s *Service) ComputeSpecHash(app *App) string {
	c := *s
	c.Replicas, c.Version, c.SpecHash, c.Status = 0, 0, "", nil
	c.Lifecycle = nil
	c.UpdateConfig, c.RollbackConfig, c.Canary = nil, nil, nil
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(&c)
	for _, ref := range s.Secrets {
		if sec := app.Secrets[ref.Source]; sec != nil {
			h.Write([]byte("secret:" + ref.Source + ":"))
			h.Write(sec.content())
		}
	}
	for _, ref := range s.Configs {
		if cfg := app.Configs[ref.Source]; cfg != nil {
			h.Write([]byte("config:" + ref.Source + ":"))
			h.Write(cfg.content())
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// content is what identifies a secret's content: its digest when the
// manager has sealed it, else the data itself.
func (s *Secret) content() []byte {
	if s.Digest != "" {
		return []byte(s.Digest)
	}
	return s.Data
}
