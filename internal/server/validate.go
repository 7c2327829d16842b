package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"regexp"
	"time"

	"github.com/berth-dev/berth/internal/driver/sim"
	"github.com/berth-dev/berth/internal/netmesh"
	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/types"
)

var (
	// Names as Compose normalises project names, and as Docker accepts in
	// container and network names.
	// (Bounded as types.BoundedRE explains: `{0,62}` costs 50 KB a rule.)
	appNameRE  = types.NewBoundedRE(`^[a-z0-9][a-z0-9_-]*$`, 63)
	nameRE     = types.NewBoundedRE(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, 63)
	nodeIDRE   = types.NewBoundedRE(`^[a-zA-Z0-9-]+$`, 64)
	signalRE   = regexp.MustCompile(`^(SIG[A-Z0-9]+|[0-9]{1,2})$`)
	knownConds = map[string]bool{types.ConditionStarted: true, types.ConditionHealthy: true, types.ConditionCompleted: true}
)

// applyAppDefaults fills in what a client may leave out. It runs before
// validateApp, which only reads: a check that also edits would make what is
// stored depend on which checks ran.
func applyAppDefaults(app *types.App) {
	for _, svc := range app.Services {
		if svc == nil {
			continue
		}
		if svc.Mode == "" {
			svc.Mode = types.ModeReplicated
		}
		if svc.RestartPolicy.Condition == "" {
			svc.RestartPolicy.Condition = types.RestartOnFailure
		}
	}
}

// applyNodeDefaults is applyAppDefaults for a registering node.
func applyNodeDefaults(n *types.Node) {
	if n.Role == "" {
		n.Role = types.RoleWorker
	}
}

// ValidateApp reports whether the manager would accept app, with the error
// a submit would get: `berth config` runs the manager's own rules, so it
// refuses what `berth up` would. It never changes app.
func ValidateApp(app *types.App) error {
	return validateApp(app)
}

// validateApp checks an app as the API receives it, whoever wrote it (the
// CLI's Compose loader or another client), and names the first bad field.
// It never changes the app (applyAppDefaults does that).
func validateApp(app *types.App) error {
	if !appNameRE.MatchString(app.Name) {
		return badRequest("name", "%q is not a valid app name: use lowercase letters, digits, '-' and '_', starting with a letter or digit", app.Name)
	}
	if len(app.Services) == 0 {
		return badRequest("services", "an app needs at least one service")
	}
	for name, n := range app.Networks {
		if n == nil || !nameRE.MatchString(name) {
			return badRequest("networks."+name, "invalid network name")
		}
	}
	for name, v := range app.Volumes {
		if v == nil || !nameRE.MatchString(name) {
			return badRequest("volumes."+name, "invalid volume name")
		}
	}
	if err := validateSecrets("secrets", app.Secrets); err != nil {
		return err
	}
	if err := validateSecrets("configs", app.Configs); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, svc := range app.Services {
		if svc == nil {
			return badRequest(fmt.Sprintf("services[%d]", i), "must not be null")
		}
		if seen[svc.Name] {
			return badRequest("services."+svc.Name, "service defined twice")
		}
		seen[svc.Name] = true
		if err := validateService(app, svc); err != nil {
			return err
		}
	}
	if err := validateNames(app); err != nil {
		return err
	}
	return validateDependencyCycles(app)
}

// validateNames applies the agent DNS's rule for names (netmesh.CheckNames)
// to each network's services: one owner per name, every name a DNS name.
func validateNames(app *types.App) error {
	byNet := map[string][]netmesh.ServiceNames{}
	var order []string
	for _, svc := range app.Services {
		for _, att := range svc.Networks {
			if byNet[att.Name] == nil {
				order = append(order, att.Name)
			}
			byNet[att.Name] = append(byNet[att.Name], netmesh.ServiceNames{Name: svc.Name, Aliases: att.Aliases})
		}
	}
	for _, net := range order {
		if err := netmesh.CheckNames(byNet[net]); err != nil {
			return badRequest("networks."+net, "%s", err.Error())
		}
	}
	return nil
}

func validateSecrets(kind string, m map[string]*types.Secret) error {
	for name, s := range m {
		f := kind + "." + name
		if s == nil || !nameRE.MatchString(name) {
			return badRequest(f, "invalid name")
		}
		if len(s.Data) > types.MaxSecretSize {
			return badRequest(f, "is %d bytes; the limit is %d", len(s.Data), types.MaxSecretSize)
		}
		if s.External {
			return badRequest(f+".external", "external %s are not supported yet; give the content in the app", kind)
		}
	}
	return nil
}

func validateService(app *types.App, svc *types.Service) error {
	f := "services." + svc.Name
	if !nameRE.MatchString(svc.Name) {
		return badRequest(f, "invalid service name: use letters, digits, '.', '-' and '_'")
	}
	checks := []func(string, *types.App, *types.Service) error{
		validateRuntime, validateScale, validatePorts, validatePolicies, validateRefs, validateMounts,
		validatePlacement, validateNetworking, validateUpdate,
	}
	for _, check := range checks {
		if err := check(f, app, svc); err != nil {
			return err
		}
	}
	return nil
}

func validateRuntime(f string, _ *types.App, svc *types.Service) error {
	switch svc.Driver {
	case "", types.DriverDocker:
		if svc.Image == "" {
			return badRequest(f+".image", "required (a service with build: is built by the CLI, which then names the image)")
		}
	case types.DriverExec:
		if len(svc.Command) == 0 && len(svc.Entrypoint) == 0 {
			return badRequest(f+".command", "required for the exec driver: it names the program to run")
		}
	case types.DriverSim: // simulated (berth sim): runs nothing, needs neither
		if _, err := sim.BehaviourOf(svc, sim.Behaviour{}); err != nil {
			return badRequest(f+".deploy.labels", "%v", err)
		}
	default:
		return badRequest(f+".driver", "unknown driver %q; use docker or exec", svc.Driver)
	}
	if svc.StopSignal != "" && !signalRE.MatchString(svc.StopSignal) {
		return badRequest(f+".stop_signal", "%q is not a signal name such as SIGTERM", svc.StopSignal)
	}
	if svc.StopGracePeriod < 0 {
		return badRequest(f+".stop_grace_period", "must not be negative")
	}
	return nil
}

func validateScale(f string, _ *types.App, svc *types.Service) error {
	switch svc.Mode {
	case "", types.ModeReplicated:
		// The upper bound is a configurable limit (limits.go).
		if svc.Replicas < 0 {
			return badRequest(f+".replicas", "must not be negative, not %d", svc.Replicas)
		}
	case types.ModeGlobal:
		if svc.Replicas != 0 {
			return badRequest(f+".replicas", "a global service runs one task per node; replicas cannot be set")
		}
	default:
		return badRequest(f+".mode", "must be replicated or global, not %q", svc.Mode)
	}
	r := svc.Resources
	for name, v := range map[string]int64{
		"limits.cpus": r.Limits.NanoCPUs, "limits.memory": r.Limits.MemoryBytes, "limits.pids": r.Limits.Pids,
		"reservations.cpus": r.Reservations.NanoCPUs, "reservations.memory": r.Reservations.MemoryBytes,
	} {
		if v < 0 {
			return badRequest(f+".resources."+name, "must not be negative")
		}
	}
	if r.Limits.MemoryBytes > 0 && r.Reservations.MemoryBytes > r.Limits.MemoryBytes {
		return badRequest(f+".resources.reservations.memory", "is more than the memory limit")
	}
	if r.Limits.NanoCPUs > 0 && r.Reservations.NanoCPUs > r.Limits.NanoCPUs {
		return badRequest(f+".resources.reservations.cpus", "is more than the cpu limit")
	}
	if svc.Placement.MaxReplicasPerNode < 0 {
		return badRequest(f+".placement.max_replicas_per_node", "must not be negative")
	}
	return nil
}

func validatePorts(f string, _ *types.App, svc *types.Service) error {
	seen := map[string]bool{}
	for i, p := range svc.Ports {
		pf := fmt.Sprintf("%s.ports[%d]", f, i)
		if p.Target == 0 {
			return badRequest(pf+".target", "must be a port between 1 and 65535")
		}
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return badRequest(pf+".protocol", "must be tcp or udp, not %q", p.Protocol)
		}
		if p.Mode != types.PortIngress && p.Mode != types.PortHost {
			return badRequest(pf+".mode", "must be ingress (\"\") or host, not %q", p.Mode)
		}
		if p.HostIP != "" && net.ParseIP(p.HostIP) == nil {
			return badRequest(pf+".host_ip", "%q is not an IP address", p.HostIP)
		}
		if p.Published != 0 {
			key := fmt.Sprintf("%s:%d/%s", p.HostIP, p.Published, p.Protocol)
			if seen[key] {
				return badRequest(pf+".published", "port %d/%s is published twice", p.Published, p.Protocol)
			}
			seen[key] = true
		}
	}
	return nil
}

// maxDrainDelay bounds x-berth-drain-delay, as the compose loader does.
const maxDrainDelay = 10 * time.Minute

func validateNetworking(f string, _ *types.App, svc *types.Service) error {
	switch {
	case svc.EndpointMode != types.EndpointVIP && svc.EndpointMode != types.EndpointDNSRR:
		return badRequest(f+".endpoint_mode", "must be vip (\"\") or dnsrr, not %q", svc.EndpointMode)
	case svc.Mesh != "" && svc.Mesh != types.MeshLocal:
		return badRequest(f+".mesh", "must be \"\" (every replica) or local, not %q", svc.Mesh)
	case svc.ProxyProtocol != "" && svc.ProxyProtocol != types.ProxyV2:
		return badRequest(f+".proxy_protocol", "must be \"\" or v2, not %q", svc.ProxyProtocol)
	case svc.DrainDelay < 0 || svc.DrainDelay > maxDrainDelay:
		return badRequest(f+".drain_delay", "must be between 0s and %s", maxDrainDelay)
	}
	return nil
}

func validatePolicies(f string, _ *types.App, svc *types.Service) error {
	rp := svc.RestartPolicy
	switch rp.Condition {
	case "", types.RestartNone, types.RestartOnFailure, types.RestartAny:
	default:
		return badRequest(f+".restart_policy.condition", "must be none, on-failure or any, not %q", rp.Condition)
	}
	if rp.Delay < 0 || rp.Window < 0 || rp.MaxAttempts < 0 {
		return badRequest(f+".restart_policy", "delay, window and max_attempts must not be negative")
	}
	if hc := svc.Healthcheck; hc != nil && !hc.Disable && len(hc.Test) > 0 {
		switch hc.Test[0] {
		case "NONE":
		case "CMD", "CMD-SHELL":
			if len(hc.Test) < 2 {
				return badRequest(f+".healthcheck.test", "%s needs a command", hc.Test[0])
			}
		default:
			return badRequest(f+".healthcheck.test", "must start with CMD, CMD-SHELL or NONE, not %q", hc.Test[0])
		}
		if hc.Interval < 0 || hc.Timeout < 0 || hc.StartPeriod < 0 || hc.Retries < 0 {
			return badRequest(f+".healthcheck", "durations and retries must not be negative")
		}
	}
	return nil
}

func validateRefs(f string, app *types.App, svc *types.Service) error {
	for i, d := range svc.DependsOn {
		df := fmt.Sprintf("%s.depends_on[%d]", f, i)
		if d.Service == svc.Name {
			return badRequest(df, "a service cannot depend on itself")
		}
		if d.Required && app.Service(d.Service) == nil {
			return badRequest(df, "service %q is not in the app", d.Service)
		}
		if !knownConds[d.Condition] {
			return badRequest(df+".condition", "must be service_started, service_healthy or service_completed_successfully, not %q", d.Condition)
		}
	}
	for i, n := range svc.Networks {
		if app.Networks[n.Name] == nil {
			return badRequest(fmt.Sprintf("%s.networks[%d]", f, i), "network %q is not defined in the app", n.Name)
		}
	}
	refs := []struct {
		kind string
		list []types.FileRef
		defs map[string]*types.Secret
	}{{"secrets", svc.Secrets, app.Secrets}, {"configs", svc.Configs, app.Configs}}
	for _, r := range refs {
		for i, ref := range r.list {
			rf := fmt.Sprintf("%s.%s[%d]", f, r.kind, i)
			if r.defs[ref.Source] == nil {
				return badRequest(rf+".source", "%q is not defined in the app's %s", ref.Source, r.kind)
			}
			if !path.IsAbs(ref.Target) {
				return badRequest(rf+".target", "must be an absolute path, not %q", ref.Target)
			}
		}
	}
	return nil
}

func validateMounts(f string, app *types.App, svc *types.Service) error {
	for i, m := range svc.Mounts {
		mf := fmt.Sprintf("%s.volumes[%d]", f, i)
		if !path.IsAbs(m.Target) {
			return badRequest(mf+".target", "must be an absolute path, not %q", m.Target)
		}
		switch m.Type {
		case types.MountBind:
			if !path.IsAbs(m.Source) {
				return badRequest(mf+".source", "a bind mount needs an absolute host path, not %q", m.Source)
			}
		case types.MountVolume:
			if m.Source != "" && app.Volumes[m.Source] == nil {
				return badRequest(mf+".source", "volume %q is not defined in the app's volumes", m.Source)
			}
		case types.MountTmpfs:
		default:
			return badRequest(mf+".type", "must be bind, volume or tmpfs, not %q", m.Type)
		}
	}
	return nil
}

// validateDependencyCycles refuses depends_on cycles, which would hold every
// service in them back for ever.
func validateDependencyCycles(app *types.App) error {
	cycle := app.DependencyCycle()
	if cycle == nil {
		return nil
	}
	// Named at the service where the cycle closes, as [a b a] reads.
	return badRequest("services."+cycle[len(cycle)-1]+".depends_on", "dependency cycle: %v", cycle)
}

// validatePlacement parses the constraints and preferences with the
// scheduler's own parser, so a typo gets a 400 naming it at submit rather
// than a pending reason later.
func validatePlacement(f string, _ *types.App, svc *types.Service) error {
	var pe *scheduler.PlacementError
	if err := scheduler.CheckPlacement(svc.Placement); errors.As(err, &pe) {
		return badRequest(f+".placement."+pe.Field, "%s", pe.Err.Error())
	}
	return nil
}

func validateNode(n *types.Node) error {
	if n.ID != "" && !nodeIDRE.MatchString(n.ID) {
		return badRequest("node.id", "%q is not a valid node ID", n.ID)
	}
	if n.Name == "" || len(n.Name) > 253 {
		return badRequest("node.name", "required, at most 253 characters")
	}
	if _, _, err := net.SplitHostPort(n.Address); err != nil {
		return badRequest("node.address", "must be host:port of the agent's API, not %q", n.Address)
	}
	if len(n.Drivers) == 0 {
		return badRequest("node.drivers", "a node must offer at least one driver")
	}
	for i, d := range n.Drivers {
		if d != types.DriverDocker && d != types.DriverExec && d != types.DriverSim {
			return badRequest(fmt.Sprintf("node.drivers[%d]", i), "unknown driver %q", d)
		}
	}
	switch n.Role {
	case "", types.RoleWorker, types.RoleManager:
	default:
		return badRequest("node.role", "must be worker or manager, not %q", n.Role)
	}
	if n.Capacity.NanoCPUs < 0 || n.Capacity.MemoryBytes < 0 {
		return badRequest("node.capacity", "must not be negative")
	}
	return nil
}

var observedStates = map[types.TaskState]bool{
	types.TaskStarting: true, types.TaskRunning: true, types.TaskComplete: true,
	types.TaskFailed: true, types.TaskShutdown: true, types.TaskRejected: true,
}

const maxStatusBatch = 10000

func validateStatuses(st []types.TaskStatus) error {
	if len(st) > maxStatusBatch {
		return badRequest("tasks", "at most %d statuses per report", maxStatusBatch)
	}
	for i, s := range st {
		f := fmt.Sprintf("tasks[%d]", i)
		if s.TaskID == "" {
			return badRequest(f+".task_id", "required")
		}
		if !observedStates[s.State] {
			return badRequest(f+".state", "%q is not a state an agent reports", s.State)
		}
		switch s.Health {
		case types.HealthNone, types.HealthStarting, types.HealthHealthy, types.HealthUnhealthy:
		default:
			return badRequest(f+".health", "unknown health %q", s.Health)
		}
		if len(s.HealthOutput) > types.MaxHealthOutput {
			return badRequest(f+".health_output", "at most %d bytes", types.MaxHealthOutput)
		}
		if len(s.Progress) > types.MaxProgress {
			return badRequest(f+".progress", "at most %d bytes", types.MaxProgress)
		}
		if err := validateAddresses(f+".addresses", s.Addresses); err != nil {
			return err
		}
	}
	return nil
}

// maxTaskAddresses bounds the networks a task reports addresses on.
const (
	maxTaskAddresses = 64
	maxNetworkKey    = 255
)

func validateAddresses(field string, addrs map[string]string) error {
	if len(addrs) > maxTaskAddresses {
		return badRequest(field, "at most %d networks", maxTaskAddresses)
	}
	for key, a := range addrs {
		if key == "" || len(key) > maxNetworkKey {
			return badRequest(field, "network name %q must be 1 to %d bytes", key, maxNetworkKey)
		}
		if ip, err := netip.ParseAddr(a); err != nil || !ip.Is4() {
			return badRequest(field+"."+key, "%q is not an IPv4 address", a)
		}
	}
	return nil
}
