package compose

import (
	"fmt"
	"sort"

	ctypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/types"
)

// convertProject turns a loaded, validated compose-go project into an App,
// or returns every error the conversion finds, sorted.
func convertProject(p *ctypes.Project) (*types.App, []error) {
	app := &types.App{
		Name:     p.Name,
		Networks: convertNetworks(p.Networks),
		Volumes:  convertVolumes(p.Volumes),
	}
	var errs []error
	var err error
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

func convertNetworks(in ctypes.Networks) map[string]*types.Network {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]*types.Network, len(in))
	for key, n := range in {
		out[key] = &types.Network{
			Name:     resourceName(key, n.Name, bool(n.External)),
			Driver:   n.Driver,
			Internal: n.Internal,
			External: bool(n.External),
			Labels:   copyMap(n.Labels),
		}
	}
	return out
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
