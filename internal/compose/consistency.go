package compose

import (
	"fmt"
	"sort"

	ctypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/types"
)

// checkConsistency replaces compose-go's own check, which insists on an
// image or build for every service: a service that runs on the exec driver
// (a host process) has neither, and needs a command instead. The rest checks
// the references Compose checks: networks, volumes, secrets and configs must
// be declared, required dependencies must exist.
func checkConsistency(p *ctypes.Project) error {
	names := make([]string, 0, len(p.Services))
	for name := range p.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := checkService(p, p.Services[name]); err != nil {
			return fmt.Errorf("services.%s.%w", name, err)
		}
	}
	return nil
}

func checkService(p *ctypes.Project, s ctypes.ServiceConfig) error {
	driver, err := serviceDriver(s)
	if err != nil {
		return err
	}
	if driver == types.DriverExec {
		if len(s.Command) == 0 && len(s.Entrypoint) == 0 {
			return fmt.Errorf("command: required with %s: exec, it names the program to run", driverExtension)
		}
	} else if s.Image == "" && s.Build == nil {
		return fmt.Errorf("image: required: the service has neither an image nor a build section")
	}
	for net := range s.Networks {
		if _, ok := p.Networks[net]; !ok {
			return fmt.Errorf("networks: network %q is not declared under the top-level networks key", net)
		}
	}
	for _, ref := range s.Secrets {
		if _, ok := p.Secrets[ref.Source]; !ok {
			return fmt.Errorf("secrets: secret %q is not declared under the top-level secrets key", ref.Source)
		}
	}
	for _, ref := range s.Configs {
		if _, ok := p.Configs[ref.Source]; !ok {
			return fmt.Errorf("configs: config %q is not declared under the top-level configs key", ref.Source)
		}
	}
	for i, v := range s.Volumes {
		if v.Type == ctypes.VolumeTypeVolume && v.Source != "" {
			if _, ok := p.Volumes[v.Source]; !ok {
				return fmt.Errorf("volumes[%d]: volume %q is not declared under the top-level volumes key; add it there", i, v.Source)
			}
		}
	}
	if s.NetworkMode != "" && len(s.Networks) > 0 {
		return fmt.Errorf("network_mode: cannot be used together with networks")
	}
	if err := checkScaleAndResources(s); err != nil {
		return err
	}
	for dep, d := range s.DependsOn {
		if _, ok := p.Services[dep]; !ok && d.Required {
			if _, disabled := p.DisabledServices[dep]; disabled {
				return fmt.Errorf("depends_on: service %q is not enabled by the active profiles", dep)
			}
			return fmt.Errorf("depends_on: service %q is not defined", dep)
		}
	}
	return nil
}

// checkScaleAndResources refuses the contradictions Compose refuses: a key
// and its deploy counterpart set to different values.
func checkScaleAndResources(s ctypes.ServiceConfig) error {
	if s.Scale != nil && *s.Scale < 0 {
		return fmt.Errorf("scale: must be 0 or more")
	}
	if s.Deploy == nil {
		return nil
	}
	if s.Scale != nil && s.Deploy.Replicas != nil && *s.Scale != *s.Deploy.Replicas {
		return fmt.Errorf("scale: %d differs from deploy.replicas %d; set only one", *s.Scale, *s.Deploy.Replicas)
	}
	lim, res := s.Deploy.Resources.Limits, s.Deploy.Resources.Reservations
	conflicts := []struct {
		key, deployKey string
		set, differs   bool
	}{
		{"cpus", "deploy.resources.limits.cpus", s.CPUS != 0, lim != nil && lim.NanoCPUs.Value() != s.CPUS},
		{"mem_limit", "deploy.resources.limits.memory", s.MemLimit != 0, lim != nil && lim.MemoryBytes != s.MemLimit},
		{"pids_limit", "deploy.resources.limits.pids", s.PidsLimit != 0, lim != nil && lim.Pids != s.PidsLimit},
		{"mem_reservation", "deploy.resources.reservations.memory", s.MemReservation != 0, res != nil && res.MemoryBytes != s.MemReservation},
	}
	for _, c := range conflicts {
		if c.set && c.differs {
			return fmt.Errorf("%s: differs from %s; set only one", c.key, c.deployKey)
		}
	}
	return nil
}
