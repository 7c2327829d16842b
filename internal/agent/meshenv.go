package agent

import (
	"maps"
	"net/netip"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/ipam"
	"github.com/berth-dev/berth/internal/types"
)

// EnvServicePrefix and EnvServiceSuffix frame the variable that gives a
// host process (exec driver) the address of a service of its app:
// BERTH_SERVICE_<NAME>_ADDR, NAME upper-cased with every other character
// than a letter or digit as '_' ("web-api" gives BERTH_SERVICE_WEB_API_ADDR).
// The address is the service's VIP on its first network with one; the
// node balances it (the overlay's rules cover host processes too).
const (
	EnvServicePrefix = "BERTH_SERVICE_"
	EnvServiceSuffix = "_ADDR"
)

// configure adds the mesh's part to a task's driver config: the resolver
// of a container (this node's gateway of its first network, where the
// agent's DNS listens), and for a host process the services' addresses
// in its environment, as far as the network map knows them yet.
func (m *mesh) configure(cfg *driver.TaskConfig, res *api.AppResources) {
	if m == nil || cfg.Service == nil {
		return
	}
	svc := cfg.Service
	if cfg.Task != nil {
		m.drains.remember(cfg.Task.ID, svc.Drain())
	}
	if len(svc.Networks) > 0 && res != nil {
		if p, err := netip.ParsePrefix(res.Slices[svc.Networks[0].Name]); err == nil {
			gw := ipam.Gateway(p)
			cfg.DNS = []string{gw.String()}
			m.serveEarly(gw)
		}
	}
	if svc.Driver != types.DriverExec {
		return
	}
	env := serviceEnv(m.latest.Load(), cfg.Task.App)
	if len(env) == 0 {
		return
	}
	maps.Copy(env, svc.Env) // the service's own settings win
	c := *svc
	c.Env = env
	cfg.Service = &c
}

// serviceEnv is BERTH_SERVICE_<NAME>_ADDR for every service of app with a
// VIP in the map. Two names that map to one variable keep the first.
func serviceEnv(nm *api.NetworkMap, app string) map[string]string {
	if nm == nil {
		return nil
	}
	env := map[string]string{}
	for _, s := range nm.Services {
		if s.App != app {
			continue
		}
		key := EnvServicePrefix + envName(s.Name) + EnvServiceSuffix
		if _, dup := env[key]; dup {
			continue
		}
		for _, att := range s.Networks {
			if vip, err := netip.ParseAddr(att.VIP); err == nil {
				env[key] = vip.String()
				break
			}
		}
	}
	return env
}

// envName is name as an environment variable's part.
func envName(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, name)
}
