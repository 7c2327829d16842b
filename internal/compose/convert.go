package compose

import (
	"fmt"
	"net/netip"
	"sort"

	ctypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/types"
)

// convertProject turns a loaded, validated compose-go project into an App,
// or returns every error the conversion finds, sorted.
func convertProject(p *ctypes.Project) (*types.App, []error) {
	app := &types.App{
		Name:    p.Name,
		Volumes: convertVolumes(p.Volumes),
	}
	var errs []error
	var err error
	app.Networks, errs = convertNetworks(p.Networks)
	if app.Secrets, err = convertSecrets(p); err != nil {
		errs = append(errs, err)
	}
	if app.Configs, err = convertConfigs(p); err != nil {
		errs = append(errs, err)
	}
	names := make([]string, 0, len(p.Services))
	for name := range p.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		svc, serr := convertService(p, p.Services[name])
		for _, err := range serr {
			errs = append(errs, atKey("services."+name, err))
		}
		if len(serr) > 0 {
			continue
		}
		app.Services = append(app.Services, svc)
	}
	if len(errs) == 0 {
		if cycle := app.DependencyCycle(); cycle != nil {
			errs = append(errs, atKey("services."+cycle[len(cycle)-1]+".depends_on", fmt.Errorf("dependency cycle: %v", cycle)))
		}
	}
	if len(errs) > 0 {
		return nil, sortErrors(errs)
	}
	return app, nil
}

func convertNetworks(in ctypes.Networks) (map[string]*types.Network, []error) {
	if len(in) == 0 {
		return nil, nil
	}
	var errs []error
	out := make(map[string]*types.Network, len(in))
	for key, n := range in {
		subnet, err := ipamSubnet(n.Ipam)
		if err != nil {
			errs = append(errs, atKey("networks."+key+".ipam", err))
		}
		out[key] = &types.Network{
			Name:     resourceName(key, n.Name, bool(n.External)),
			Driver:   n.Driver,
			Internal: n.Internal,
			External: bool(n.External),
			Labels:   copyMap(n.Labels),
			Subnet:   subnet,
		}
	}
	return out, errs
}

// ipamSubnet is the one subnet a network's ipam may choose: berth's
// overlay gives every network one IPv4 subnet (each node a slice of it),
// and hands out gateways and addresses itself (ip_range, gateway and
// aux_addresses are reported as not honoured).
func ipamSubnet(c ctypes.IPAMConfig) (string, error) {
	if c.Driver != "" && c.Driver != "default" {
		return "", fmt.Errorf("driver %q: berth's overlay allocates addresses itself; remove the driver or set it to default", c.Driver)
	}
	var subnets []string
	for _, pool := range c.Config {
		if pool != nil && pool.Subnet != "" {
			subnets = append(subnets, pool.Subnet)
		}
	}
	switch {
	case len(subnets) == 0:
		return "", nil
	case len(subnets) > 1:
		return "", fmt.Errorf("config: %d subnets; a berth network has one IPv4 subnet, keep one", len(subnets))
	}
	p, err := netip.ParsePrefix(subnets[0])
	if err != nil || !p.Addr().Is4() {
		return "", fmt.Errorf("config subnet %q is not an IPv4 prefix such as 10.100.0.0/16", subnets[0])
	}
	if p != p.Masked() {
		return "", fmt.Errorf("config subnet %s has host bits set (did you mean %s?)", p, p.Masked())
	}
	return p.String(), nil
}

func convertVolumes(in ctypes.Volumes) map[string]*types.Volume {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]*types.Volume, len(in))
	for key, v := range in {
		out[key] = &types.Volume{
			Name:       resourceName(key, v.Name, bool(v.External)),
			Driver:     v.Driver,
			DriverOpts: copyMap(v.DriverOpts),
			External:   bool(v.External),
			Labels:     copyMap(v.Labels),
		}
	}
	return out
}

// resourceName is the key in the file for a resource berth names itself
// ("<app>_<key>"), and the existing resource's name for an external one.
func resourceName(key, name string, external bool) string {
	if external && name != "" {
		return name
	}
	return key
}

// copyMap returns a copy of m, or nil when m is empty, so empty maps and
// missing ones look the same in the App.
func copyMap[M ~map[string]string](m M) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// resolvedMap drops the variables that have no value: compose-go leaves a
// bare `KEY` it could not resolve from the environment as nil, and Compose
// does not set it in the container.
func resolvedMap(m ctypes.MappingWithEquals) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
