package server

import (
	"github.com/berth-dev/berth/internal/types"
)

// validateUpdate checks deploy.update_config, deploy.rollback_config and
// x-berth-update by the rules the Compose loader applies
// (types.UpdateConfig.Check, types.Canary.Check).
func validateUpdate(f string, _ *types.App, svc *types.Service) error {
	for _, c := range []struct {
		key      string
		cfg      *types.UpdateConfig
		rollback bool
	}{{".update_config", svc.UpdateConfig, false}, {".rollback_config", svc.RollbackConfig, true}} {
		if field, err := c.cfg.Check(c.rollback); err != nil {
			return badRequest(f+c.key+"."+field, "%s", err.Error())
		}
	}
	if field, err := svc.Canary.Check(); err != nil {
		return badRequest(f+".canary."+field, "%s", err.Error())
	}
	return nil
}
