package compose

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	ctypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/types"
)

// checkConsistency replaces compose-go's own check, which insists on an
// image or build for every service: a service that runs on the exec driver
// (a host process) has neither, and needs a command instead. The rest checks
// the references Compose checks: networks, volumes, secrets and configs must
// be declared, required dependencies must exist, build contexts must be
// there. It returns every problem, sorted.
func checkConsistency(p *ctypes.Project) []error {
	var errs []error
	for name, s := range p.Services {
		for _, err := range checkService(p, s) {
			errs = append(errs, atKey("services."+name, err))
		}
	}
	return sortErrors(errs)
}

func checkService(p *ctypes.Project, s ctypes.ServiceConfig) []error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(checkRuntime(s))
	for net := range s.Networks {
		if _, ok := p.Networks[net]; !ok {
			add(atKey("networks", fmt.Errorf("network %q is not declared under the top-level networks key", net)))
		}
	}
	for _, ref := range s.Secrets {
		if _, ok := p.Secrets[ref.Source]; !ok {
			add(atKey("secrets", fmt.Errorf("secret %q is not declared under the top-level secrets key", ref.Source)))
		}
	}
	for _, ref := range s.Configs {
		if _, ok := p.Configs[ref.Source]; !ok {
			add(atKey("configs", fmt.Errorf("config %q is not declared under the top-level configs key", ref.Source)))
		}
	}
	for i, v := range s.Volumes {
		if v.Type == ctypes.VolumeTypeVolume && v.Source != "" {
			if _, ok := p.Volumes[v.Source]; !ok {
				add(atKey(fmt.Sprintf("volumes[%d]", i), fmt.Errorf("volume %q is not declared under the top-level volumes key; add it there", v.Source)))
			}
		}
	}
	if s.NetworkMode != "" && len(s.Networks) > 0 {
		add(atKey("network_mode", fmt.Errorf("cannot be used together with networks")))
	}
	add(checkScaleAndResources(s))
	add(checkBuildContext(s.Build))
	for dep, d := range s.DependsOn {
		if _, ok := p.Services[dep]; !ok && d.Required {
			if _, disabled := p.DisabledServices[dep]; disabled {
				add(atKey("depends_on", fmt.Errorf("service %q is not enabled by the active profiles", dep)))
				continue
			}
			add(atKey("depends_on", fmt.Errorf("service %q is not defined", dep)))
		}
	}
	return errs
}

func checkRuntime(s ctypes.ServiceConfig) error {
	driver, err := serviceDriver(s)
	if err != nil {
		return err
	}
	if driver == types.DriverSim {
		return nil // a simulated task runs nothing: neither image nor command
	}
	if driver == types.DriverExec {
		if len(s.Command) == 0 && len(s.Entrypoint) == 0 {
			return atKey("command", fmt.Errorf("required with %s: exec, it names the program to run", driverExtension))
		}
	} else if s.Image == "" && s.Build == nil {
		return atKey("image", fmt.Errorf("required: the service has neither an image nor a build section"))
	}
	return nil
}

// checkBuildContext refuses a local build context that is not a directory,
// which `up` would otherwise find only when it builds. A remote context (a
// URL or a Git address) is the builder's to fetch.
func checkBuildContext(b *ctypes.BuildConfig) error {
	if b == nil || b.Context == "" || isRemoteContext(b.Context) {
		return nil
	}
	fi, err := os.Stat(b.Context)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return atKey("build.context", fmt.Errorf("directory %s does not exist; create it or fix the path", b.Context))
	case err != nil:
		return atKey("build.context", fmt.Errorf("cannot read %s: %w", b.Context, err))
	case !fi.IsDir():
		return atKey("build.context", fmt.Errorf("%s is not a directory", b.Context))
	}
	return nil
}

func isRemoteContext(c string) bool {
	for _, prefix := range []string{"http://", "https://", "git://", "git@", "github.com/", "ssh://"} {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

// checkScaleAndResources refuses the contradictions Compose refuses: a key
// and its deploy counterpart set to different values.
func checkScaleAndResources(s ctypes.ServiceConfig) error {
	if s.Scale != nil && *s.Scale < 0 {
		return atKey("scale", errors.New("must be 0 or more"))
	}
	if s.Deploy == nil {
		return nil
	}
	if s.Scale != nil && s.Deploy.Replicas != nil && *s.Scale != *s.Deploy.Replicas {
		return atKey("scale", fmt.Errorf("%d differs from deploy.replicas %d; set only one", *s.Scale, *s.Deploy.Replicas))
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
			return atKey(c.key, fmt.Errorf("differs from %s; set only one", c.deployKey))
		}
	}
	return nil
}
