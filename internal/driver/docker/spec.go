package docker

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// fileMount is a secret or config file on the host and where it goes.
type fileMount struct{ host, target string }

// createOptions turns a task into the engine's create request. image is the
// reference to run (the service's image ID when the engine has it); netIDs
// maps Compose network names to Docker network IDs. Networks after the
// first are joined with NetworkConnect before start, since engines before
// API 1.44 accept only one network at create.
func createOptions(cfg *driver.TaskConfig, nodeID, image string, netIDs map[string]string, files []fileMount) (client.ContainerCreateOptions, error) {
	s := cfg.Service
	hc, err := hostConfig(cfg, files)
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	c := &container.Config{
		Image:        image,
		Cmd:          s.Command,
		Entrypoint:   s.Entrypoint,
		Env:          envList(s.Env),
		WorkingDir:   s.WorkingDir,
		User:         s.User,
		Hostname:     s.Hostname,
		Labels:       containerLabels(cfg, nodeID),
		ExposedPorts: exposedPorts(s),
		Healthcheck:  healthConfig(s.Healthcheck),
		StopSignal:   s.StopSignal,
		StopTimeout:  stopTimeout(s),
		Tty:          s.Tty,
		OpenStdin:    s.StdinOpen,
		// A one-off's stdin ends with its attach's (berth run), as docker run -i.
		StdinOnce: s.StdinOpen && s.IsOneOff(),
	}
	opts := client.ContainerCreateOptions{Config: c, HostConfig: hc, Name: containerName(cfg.Task)}
	if atts := s.Networks; len(atts) > 0 {
		name := networkRef(cfg, atts[0].Name, netIDs)
		hc.NetworkMode = container.NetworkMode(name)
		opts.NetworkingConfig = &network.NetworkingConfig{
			EndpointsConfig: map[string]*network.EndpointSettings{name: endpoint(cfg, atts[0])},
		}
	}
	return opts, nil
}

// networkRef is the network's ID when known, else its Docker name.
func networkRef(cfg *driver.TaskConfig, key string, netIDs map[string]string) string {
	if id := netIDs[key]; id != "" {
		return id
	}
	return networkName(cfg.Task.App, cfg.Networks[key], key)
}

func hostConfig(cfg *driver.TaskConfig, files []fileMount) (*container.HostConfig, error) {
	s := cfg.Service
	bindings, err := portBindings(s.Ports, cfg.Overlay)
	if err != nil {
		return nil, err
	}
	// The agent's resolver first: it answers the service names, and passes
	// the rest to the node's own resolvers; the user's `dns` follow.
	dns, err := parseAddrs(append(slices.Clone(cfg.DNS), s.DNS...))
	if err != nil {
		return nil, err
	}
	hc := &container.HostConfig{
		PortBindings:   bindings,
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Privileged:     s.Privileged,
		ReadonlyRootfs: s.ReadOnly,
		CapAdd:         s.CapAdd,
		CapDrop:        s.CapDrop,
		ExtraHosts:     s.ExtraHosts,
		DNS:            dns,
		Tmpfs:          tmpfsMap(s.Tmpfs),
		ShmSize:        s.ShmSize,
		Sysctls:        s.Sysctls,
		Resources:      resources(s.Resources),
		Mounts:         mounts(cfg, files),
	}
	if s.Init {
		hc.Init = &s.Init
	}
	return hc, nil
}

func resources(r types.Resources) container.Resources {
	out := container.Resources{
		NanoCPUs:          r.Limits.NanoCPUs,
		Memory:            r.Limits.MemoryBytes,
		MemoryReservation: r.Reservations.MemoryBytes,
	}
	if r.Limits.Pids > 0 {
		out.PidsLimit = &r.Limits.Pids
	}
	return out
}

func mounts(cfg *driver.TaskConfig, files []fileMount) []mount.Mount {
	var out []mount.Mount
	for _, m := range cfg.Service.Mounts {
		switch m.Type {
		case types.MountBind:
			out = append(out, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
		case types.MountVolume:
			src := ""
			if m.Source != "" {
				src = volumeName(cfg.Task.App, cfg.Volumes[m.Source], m.Source)
			}
			out = append(out, mount.Mount{Type: mount.TypeVolume, Source: src, Target: m.Target, ReadOnly: m.ReadOnly})
		case types.MountTmpfs:
			out = append(out, mount.Mount{Type: mount.TypeTmpfs, Target: m.Target})
		}
	}
	for _, f := range files {
		out = append(out, mount.Mount{Type: mount.TypeBind, Source: f.host, Target: f.target, ReadOnly: true})
	}
	return out
}

// endpoint is the task's settings on one network. On the overlay neither the
// service name nor the user's aliases are Docker's: the replicas on other
// nodes are not on this engine, so Docker's DNS would answer only the local
// ones; the agent's DNS answers them all (api.MapAttachment.Aliases).
func endpoint(cfg *driver.TaskConfig, att types.NetworkAttachment) *network.EndpointSettings {
	if cfg.Overlay {
		return &network.EndpointSettings{}
	}
	aliases := append([]string{cfg.Service.Name}, att.Aliases...)
	return &network.EndpointSettings{Aliases: slices.Compact(aliases)}
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

func exposedPorts(s *types.Service) network.PortSet {
	set := network.PortSet{}
	for _, p := range s.Ports {
		set[portKey(p)] = struct{}{}
	}
	for _, e := range s.Expose {
		if p, err := network.ParsePort(e); err == nil {
			set[p] = struct{}{}
		}
	}
	return set
}

// portBindings are the ports Docker publishes: all published ones, or on
// the overlay only those of mode host (the agent's mesh answers the ingress
// ones on every node).
func portBindings(ports []types.Port, overlay bool) (network.PortMap, error) {
	pm := network.PortMap{}
	for _, p := range ports {
		if p.Published == 0 || overlay && p.Mode != types.PortHost {
			continue
		}
		b := network.PortBinding{HostPort: strconv.Itoa(int(p.Published))}
		if p.HostIP != "" {
			ip, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return nil, fmt.Errorf("port %d: host IP %q is not an IP address", p.Published, p.HostIP)
			}
			b.HostIP = ip
		}
		key := portKey(p)
		pm[key] = append(pm[key], b)
	}
	return pm, nil
}

func portKey(p types.Port) network.Port {
	proto := network.TCP
	if strings.EqualFold(p.Protocol, "udp") {
		proto = network.UDP
	}
	k, _ := network.PortFrom(p.Target, proto) // ok is false only for an empty protocol
	return k
}

func parseAddrs(in []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range in {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("dns server %q is not an IP address", s)
		}
		out = append(out, a)
	}
	return out, nil
}

// tmpfsMap turns Compose's "path[:options]" entries into the engine's map.
func tmpfsMap(in []string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for _, e := range in {
		path, opts, _ := strings.Cut(e, ":")
		out[path] = opts
	}
	return out
}

// healthConfig passes the Compose forms through: the engine takes the same
// ["CMD", ...], ["CMD-SHELL", cmd] and ["NONE"] tests.
func healthConfig(h *types.Healthcheck) *container.HealthConfig {
	if h == nil {
		return nil
	}
	if h.Disabled() {
		return &container.HealthConfig{Test: []string{"NONE"}}
	}
	// StartInterval needs API 1.44; engines we support would ignore it.
	return &container.HealthConfig{
		Test:        h.Test,
		Interval:    h.Interval,
		Timeout:     h.Timeout,
		StartPeriod: h.StartPeriod,
		Retries:     h.Retries,
	}
}

// stopTimeout is the grace period in whole seconds, rounded up, so a grace
// of 1.5s never becomes 1s.
func stopTimeout(s *types.Service) *int {
	if s.StopGracePeriod <= 0 {
		return nil
	}
	secs := int(math.Ceil(s.StopGracePeriod.Seconds()))
	return &secs
}
