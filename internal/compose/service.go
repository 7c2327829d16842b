package compose

import (
	"fmt"
	"slices"
	"sort"
	"time"

	ctypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/types"
)

// driverExtension picks the driver that runs a service's tasks.
const driverExtension = "x-berth-driver"

// convertService converts one service. Errors name the key, the caller
// prefixes the service; every error is returned, not the first.
func convertService(p *ctypes.Project, s ctypes.ServiceConfig) (*types.Service, []error) {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	driver, err := serviceDriver(s)
	add(err)
	out := &types.Service{
		Name:        s.Name,
		Driver:      driver,
		Image:       s.Image,
		PullPolicy:  pullPolicy(s.PullPolicy),
		Build:       convertBuild(s.Build),
		Command:     commandOrNil(s.Command),
		Entrypoint:  commandOrNil(s.Entrypoint),
		Env:         resolvedMap(s.Environment),
		WorkingDir:  s.WorkingDir,
		User:        s.User,
		Hostname:    s.Hostname,
		Labels:      copyMap(s.Labels),
		Expose:      slices.Clone([]string(s.Expose)),
		Healthcheck: convertHealthcheck(s.HealthCheck),
		DependsOn:   convertDependsOn(s.DependsOn),
		Networks:    convertAttachments(s.Networks),
		StopSignal:  s.StopSignal,
		Tty:         s.Tty,
		StdinOpen:   s.StdinOpen,
		Privileged:  s.Privileged,
		Init:        s.Init != nil && *s.Init,
		ReadOnly:    s.ReadOnly,
		CapAdd:      slices.Clone(s.CapAdd),
		CapDrop:     slices.Clone(s.CapDrop),
		ExtraHosts:  extraHosts(s.ExtraHosts),
		DNS:         slices.Clone([]string(s.DNS)),
		Tmpfs:       slices.Clone([]string(s.Tmpfs)),
		ShmSize:     int64(s.ShmSize),
		Sysctls:     copyMap(s.Sysctls),
	}
	if out.Image == "" && s.Build != nil {
		// As Compose v2 names the images it builds.
		out.Image = p.Name + "-" + s.Name
	}
	if s.StopGracePeriod != nil {
		out.StopGracePeriod = time.Duration(*s.StopGracePeriod)
	}
	errs = append(errs, applyDeploy(out, s)...)
	errs = append(errs, applyNetworking(out, s)...)
	out.Ports, err = convertPorts(s.Ports)
	add(err)
	out.Mounts, err = convertMounts(p, s.Volumes)
	add(err)
	out.Secrets, err = convertFileRefs(secretRefs(s.Secrets), "/run/secrets")
	add(atKey("secrets", err))
	out.Configs, err = convertFileRefs(configRefs(s.Configs), "/")
	add(atKey("configs", err))
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func serviceDriver(s ctypes.ServiceConfig) (string, error) {
	v, ok := s.Extensions[driverExtension]
	if !ok {
		return types.DriverDocker, nil
	}
	name, _ := v.(string)
	switch name {
	case types.DriverDocker, types.DriverExec, types.DriverSim:
		return name, nil
	}
	return "", atKey(driverExtension, fmt.Errorf("driver %v is not one of %q, %q or %q", v, types.DriverDocker, types.DriverExec, types.DriverSim))
}

func convertBuild(b *ctypes.BuildConfig) *types.Build {
	if b == nil {
		return nil
	}
	return &types.Build{
		Context:    b.Context,
		Dockerfile: b.Dockerfile,
		Args:       resolvedMap(b.Args),
		Target:     b.Target,
		Labels:     copyMap(b.Labels),
	}
}

// commandOrNil keeps the difference between a command not given (nil: the
// image's) and one given empty (clears the image's).
func commandOrNil(c ctypes.ShellCommand) []string {
	if c == nil {
		return nil
	}
	return append([]string{}, c...)
}

func convertHealthcheck(h *ctypes.HealthCheckConfig) *types.Healthcheck {
	if h == nil {
		return nil
	}
	out := &types.Healthcheck{
		Test:          slices.Clone([]string(h.Test)),
		Interval:      duration(h.Interval),
		Timeout:       duration(h.Timeout),
		StartPeriod:   duration(h.StartPeriod),
		StartInterval: duration(h.StartInterval),
		Disable:       h.Disable,
	}
	out.Disable = out.Disabled() // a ["NONE"] test says the same: one rule

	if h.Retries != nil {
		out.Retries = int(*h.Retries)
	}
	return out
}

func duration(d *ctypes.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return time.Duration(*d)
}

func convertDependsOn(deps ctypes.DependsOnConfig) []types.Dependency {
	var out []types.Dependency
	for name, d := range deps {
		cond := d.Condition
		if cond == "" {
			cond = types.ConditionStarted
		}
		out = append(out, types.Dependency{Service: name, Condition: cond, Required: d.Required})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}

// convertAttachments lists the networks a service joins, by name.
// compose-go has already put a service with no networks on "default".
func convertAttachments(nets map[string]*ctypes.ServiceNetworkConfig) []types.NetworkAttachment {
	var out []types.NetworkAttachment
	for name, n := range nets {
		a := types.NetworkAttachment{Name: name}
		if n != nil {
			a.Aliases = slices.Clone(n.Aliases)
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// extraHosts flattens extra_hosts to "host:ip", sorted.
func extraHosts(h ctypes.HostsList) []string {
	var out []string
	for host, ips := range h {
		for _, ip := range ips {
			out = append(out, host+":"+ip)
		}
	}
	sort.Strings(out)
	return out
}

// pullPolicy is Compose's pull_policy as the nodes apply it; one berth
// does not honour (a warning says so) leaves the default, pull when
// missing.
func pullPolicy(p string) string {
	if slices.Contains(pullPolicies, p) {
		return p
	}
	return ""
}
