package compose

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	ctypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/types"
)

// applyDeploy sets mode, replicas, labels, resources, restart policy and
// placement from deploy, scale and restart, and returns every error.
func applyDeploy(out *types.Service, s ctypes.ServiceConfig) []error {
	d := s.Deploy
	if d == nil {
		d = &ctypes.DeployConfig{}
	}
	var errs []error
	var err error
	if out.Mode, out.Replicas, err = modeAndReplicas(d, s.Scale); err != nil {
		errs = append(errs, err)
	}
	out.DeployLabels = copyMap(d.Labels)
	if out.Resources, err = convertResources(d.Resources); err != nil {
		errs = append(errs, err)
	}
	applyShortResources(&out.Resources, s)
	if out.RestartPolicy, err = restartPolicy(s.Restart, d.RestartPolicy); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, updateConfigs(out, d)...) // deploy_update.go
	errs = append(errs, canary(out, s)...)
	out.Placement = convertPlacement(d.Placement)
	// The scheduler's own parser: `config` refuses what the manager would.
	var pe *scheduler.PlacementError
	if errors.As(scheduler.CheckPlacement(out.Placement), &pe) {
		errs = append(errs, atKey("deploy.placement."+pe.Field, pe.Err))
	}
	return errs
}

// applyShortResources honours the service-level cpus, mem_limit,
// mem_reservation and pids_limit keys of Compose, where the deploy section
// does not say otherwise (checkConsistency refuses the two disagreeing).
func applyShortResources(r *types.Resources, s ctypes.ServiceConfig) {
	if r.Limits.NanoCPUs == 0 && s.CPUS > 0 {
		r.Limits.NanoCPUs = int64(float64(s.CPUS) * 1e9)
	}
	if r.Limits.MemoryBytes == 0 {
		r.Limits.MemoryBytes = int64(s.MemLimit)
	}
	if r.Reservations.MemoryBytes == 0 {
		r.Reservations.MemoryBytes = int64(s.MemReservation)
	}
	if r.Limits.Pids == 0 {
		r.Limits.Pids = s.PidsLimit
	}
}

// modeAndReplicas resolves deploy.mode, deploy.replicas and scale. compose-go
// has already rejected a scale that differs from deploy.replicas and copied
// scale into deploy.replicas when both sections exist.
func modeAndReplicas(d *ctypes.DeployConfig, scale *int) (string, int, error) {
	replicas := d.Replicas
	if replicas == nil {
		replicas = scale
	}
	switch d.Mode {
	case "", types.ModeReplicated:
		if replicas == nil {
			return types.ModeReplicated, 1, nil
		}
		if *replicas < 0 {
			return "", 0, atKey("deploy.replicas", fmt.Errorf("%d is negative", *replicas))
		}
		return types.ModeReplicated, *replicas, nil
	case types.ModeGlobal:
		if replicas != nil {
			return "", 0, atKey("deploy.replicas", errors.New("a global service runs one task per node and takes no replicas or scale; remove them or use mode replicated"))
		}
		return types.ModeGlobal, 0, nil
	}
	return "", 0, atKey("deploy.mode", fmt.Errorf("%q is not supported by berth; use %q or %q", d.Mode, types.ModeReplicated, types.ModeGlobal))
}

func convertResources(r ctypes.Resources) (types.Resources, error) {
	limits, err := convertResource(r.Limits)
	if err != nil {
		return types.Resources{}, atKey("deploy.resources.limits", err)
	}
	reservations, err := convertResource(r.Reservations)
	if err != nil {
		return types.Resources{}, atKey("deploy.resources.reservations", err)
	}
	return types.Resources{Limits: limits, Reservations: reservations}, nil
}

func convertResource(r *ctypes.Resource) (types.ResourceAmounts, error) {
	if r == nil {
		return types.ResourceAmounts{}, nil
	}
	if r.NanoCPUs < 0 || r.MemoryBytes < 0 || r.Pids < 0 {
		return types.ResourceAmounts{}, errors.New("cpus, memory and pids must not be negative")
	}
	return types.ResourceAmounts{
		NanoCPUs:    nanoCPUs(float32(r.NanoCPUs)),
		MemoryBytes: int64(r.MemoryBytes),
		Pids:        r.Pids,
	}, nil
}

// nanoCPUs converts compose-go's float32 CPU count through its shortest
// decimal form, so "0.1" becomes 100000000 and not float32's 100000001.
func nanoCPUs(cpus float32) int64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(cpus), 'f', -1, 32), 64)
	return int64(math.Round(f * 1e9))
}

// restartPolicy maps deploy.restart_policy (which wins when both are given,
// as in Swarm) or the top-level restart. With neither, crashed tasks come
// back and one-shot tasks that exit 0 are done: on-failure.
func restartPolicy(restart string, rp *ctypes.RestartPolicy) (types.RestartPolicy, error) {
	if rp != nil {
		return deployRestartPolicy(rp)
	}
	switch {
	case restart == "":
		return types.RestartPolicy{Condition: types.RestartOnFailure}, nil
	case restart == "no":
		return types.RestartPolicy{Condition: types.RestartNone}, nil
	case restart == "always" || restart == "unless-stopped":
		return types.RestartPolicy{Condition: types.RestartAny}, nil
	case restart == "on-failure":
		return types.RestartPolicy{Condition: types.RestartOnFailure}, nil
	case strings.HasPrefix(restart, "on-failure:"):
		n, err := strconv.Atoi(strings.TrimPrefix(restart, "on-failure:"))
		if err != nil || n < 0 {
			return types.RestartPolicy{}, atKey("restart", fmt.Errorf("%q has no valid retry count; use on-failure:N with N >= 0", restart))
		}
		return types.RestartPolicy{Condition: types.RestartOnFailure, MaxAttempts: n}, nil
	}
	return types.RestartPolicy{}, atKey("restart", fmt.Errorf("%q is not one of no, always, unless-stopped, on-failure[:N]", restart))
}

func deployRestartPolicy(rp *ctypes.RestartPolicy) (types.RestartPolicy, error) {
	out := types.RestartPolicy{
		Condition: rp.Condition,
		Delay:     duration(rp.Delay),
		Window:    duration(rp.Window),
	}
	switch out.Condition {
	case "":
		out.Condition = types.RestartAny // Swarm's default for a given policy
	case types.RestartNone, types.RestartOnFailure, types.RestartAny:
	default:
		return types.RestartPolicy{}, atKey("deploy.restart_policy.condition", fmt.Errorf("%q is not one of none, on-failure, any", rp.Condition))
	}
	if rp.MaxAttempts != nil {
		if *rp.MaxAttempts > math.MaxInt32 {
			return types.RestartPolicy{}, atKey("deploy.restart_policy.max_attempts", fmt.Errorf("%d is too large", *rp.MaxAttempts))
		}
		out.MaxAttempts = int(*rp.MaxAttempts)
	}
	if out.Delay < 0 || out.Window < 0 {
		return types.RestartPolicy{}, atKey("deploy.restart_policy", errors.New("delay and window must not be negative"))
	}
	return out, nil
}

func convertPlacement(p ctypes.Placement) types.Placement {
	out := types.Placement{
		Constraints:        append([]string(nil), p.Constraints...),
		MaxReplicasPerNode: int(min(p.MaxReplicas, math.MaxInt32)),
	}
	for _, pref := range p.Preferences {
		if pref.Spread != "" {
			out.Preferences = append(out.Preferences, pref.Spread)
		}
	}
	return out
}
