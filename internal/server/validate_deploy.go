package server

import (
	"github.com/berth-dev/berth/internal/types"
)

// validateUpdate checks deploy.update_config and deploy.rollback_config by
// the rule the Compose loader applies (types.UpdateConfig.Check).
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
	return nil
}
