package compose

import (
	"math"
	"time"

	ctypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/types"
)

// updateConfigs maps deploy.update_config and deploy.rollback_config; the
// defaults (Swarm's) are filled in by the controller, so an absent section
// stays nil and a file without one converts as before.
func updateConfigs(out *types.Service, d *ctypes.DeployConfig) []error {
	var errs []error
	var err error
	if out.UpdateConfig, err = updateConfig("deploy.update_config", d.UpdateConfig, false); err != nil {
		errs = append(errs, err)
	}
	if out.RollbackConfig, err = updateConfig("deploy.rollback_config", d.RollbackConfig, true); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func updateConfig(key string, c *ctypes.UpdateConfig, rollback bool) (*types.UpdateConfig, error) {
	if c == nil {
		return nil, nil
	}
	out := &types.UpdateConfig{
		Delay:           durationOf(c.Delay),
		Order:           c.Order,
		Monitor:         durationOf(c.Monitor),
		MaxFailureRatio: float64(c.MaxFailureRatio),
		FailureAction:   c.FailureAction,
	}
	if c.Parallelism != nil {
		n := int(min(*c.Parallelism, math.MaxInt32))
		out.Parallelism = &n
	}
	if field, err := out.Check(rollback); err != nil {
		return nil, atKey(key+"."+field, err)
	}
	return out, nil
}

func durationOf(d ctypes.Duration) time.Duration { return time.Duration(d) }
