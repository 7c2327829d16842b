package compose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
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

// canaryExtension is the service extension of canaries.
const canaryExtension = "x-berth-update"

// canary maps x-berth-update: {canary: N, auto_promote: bool,
// progress_deadline: duration}, with unknown keys refused.
func canary(out *types.Service, s ctypes.ServiceConfig) []error {
	v, ok := s.Extensions[canaryExtension]
	if !ok {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return []error{atKey(canaryExtension, fmt.Errorf("is not a mapping: %w", err))}
	}
	var raw struct {
		Canary           int    `json:"canary"`
		AutoPromote      bool   `json:"auto_promote"`
		ProgressDeadline string `json:"progress_deadline"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return []error{atKey(canaryExtension, fmt.Errorf("must be a mapping of canary (a count), auto_promote (true or false) and progress_deadline (a duration such as 10m): %s", jsonProblem(err)))}
	}
	c := &types.Canary{Count: raw.Canary, AutoPromote: raw.AutoPromote}
	if raw.ProgressDeadline != "" {
		if c.ProgressDeadline, err = time.ParseDuration(raw.ProgressDeadline); err != nil {
			return []error{atKey(canaryExtension+".progress_deadline", fmt.Errorf("%q is not a duration such as 10m", raw.ProgressDeadline))}
		}
	}
	if field, err := c.Check(); err != nil {
		return []error{atKey(canaryExtension+"."+field, err)}
	}
	out.Canary = c
	return nil
}

// jsonProblem is a decoding error without Go's type names.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s has the wrong type", te.Field)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
