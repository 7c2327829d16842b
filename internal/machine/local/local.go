// Package local is the `local` machine driver: hosts made on this Linux
// machine, each a network namespace with its own address on a bridge berth
// creates per cluster, its own directory, for agents its own dockerd, and
// berth (agent or manager) inside it under berth's own supervisor (see
// DESIGN.md "Hosts on one machine"). It needs root.
//
// Layout: Config.Root/<cluster>/<name>/ is a host's directory (berth's data,
// the engine's data and exec roots, socket, pidfiles, logs);
// Config.Root/<cluster>/network.json is the cluster's bridge, subnet and
// addresses. Nothing else on the machine is written but the namespace
// (/run/netns/berth-<cluster>-<name>), the links and the iptables rules
// (tagged with a comment naming the bridge), all removed with the host
// (the bridge and rules with the cluster's last host), and the empty lock
// file /run/berth-machines.lock that serializes network changes of every
// local driver on the machine.
package local

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/machine"
)

// Config is the driver's setup on this machine.
type Config struct {
	// Root is the directory of every host the driver makes (required,
	// absolute), e.g. ~/.local/state/berth/machines: a host's directory is
	// Root/<cluster>/<name>.
	Root string
	// Binary is the berth binary run inside hosts (default: the running
	// one, os.Executable).
	Binary string
	// Dockerd is the engine binary for agent hosts (default: "dockerd"
	// from PATH).
	Dockerd string
	// Docker is the docker CLI used to copy Spec.Images from the machine's
	// engine (default: "docker" from PATH).
	Docker string
	// DockerHost is the machine's engine the images are copied from, as
	// DOCKER_HOST takes it (default: DOCKER_HOST, else the default socket).
	DockerHost string
	// Subnet is the subnet of a new cluster's bridge when its first host's
	// Spec.Options["subnet"] does not name one. Default: the first free
	// /24 in 10.213.0.0/16 that overlaps none of the machine's routes, its
	// resolvers or Docker's address pools.
	Subnet string
	// ReadyTimeout bounds each wait of Create (the engine, berth); default 60 s.
	ReadyTimeout time.Duration
}

// Options a Spec may carry (Spec.Options).
const (
	// OptSubnet chooses the cluster's subnet ("10.50.0.0/24") with its first
	// host; later hosts of the cluster must name the same or none.
	OptSubnet = "subnet"
)

// Driver is the local driver. Safe for concurrent use: the cluster's
// shared network setup is under a file lock in Root.
type Driver struct {
	cfg Config
}

var _ machine.Driver = (*Driver)(nil)

// New checks cfg and returns the driver.
func New(cfg Config) (*Driver, error) {
	if cfg.Root == "" || !filepath.IsAbs(cfg.Root) {
		return nil, errors.New("the local driver needs an absolute root directory for its hosts")
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the berth binary to run in hosts: %w", err)
		}
		cfg.Binary = exe
	}
	if cfg.Dockerd == "" {
		cfg.Dockerd = "dockerd"
	}
	if cfg.Docker == "" {
		cfg.Docker = "docker"
	}
	if cfg.DockerHost == "" {
		cfg.DockerHost = os.Getenv("DOCKER_HOST")
	}
	if cfg.Subnet != "" {
		if _, err := parseSubnet(cfg.Subnet); err != nil {
			return nil, err
		}
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 60 * time.Second
	}
	return &Driver{cfg: cfg}, nil
}

// Name is "local".
func (d *Driver) Name() string { return "local" }

// parseSubnet accepts an IPv4 prefix from /16 to /29, masked.
func parseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() < 16 || p.Bits() > 29 {
		return netip.Prefix{}, fmt.Errorf("invalid subnet %q: want an IPv4 subnet from /16 to /29, e.g. 10.50.0.0/24", s)
	}
	return p.Masked(), nil
}
