package compose

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	ctypes "github.com/compose-spec/compose-go/v2/types"

	execdriver "github.com/berth-dev/berth/internal/driver/exec"
	"github.com/berth-dev/berth/internal/types"
)

// Warning names one key of the Compose files that berth does not honour,
// or, as a Note, a place where berth's default differs from Compose's.
type Warning struct {
	Path    string `json:"path"`    // e.g. "services.web.deploy.update_config"
	Message string `json:"message"` // e.g. "not supported by berth yet, ignored"
	Note    bool   `json:"note,omitempty"`
}

func (w Warning) String() string { return w.Path + ": " + w.Message }

const msgIgnored = "not supported by berth yet, ignored"

// honoured lists the key paths of the loaded project that the conversion
// reads. "*" matches any one segment: a map key chosen by the user (service,
// network, volume names) or a list index. A path honours its whole subtree.
// An entry with a value is honoured only when the key holds that value.
//
// Every other key that holds something is reported, so a key berth starts to
// honour must be added here, and a key compose-go learns is reported until
// then: nothing the user wrote is dropped silently.
var honoured = slices.Concat([]honouredKey{
	{path: "name"},
	// Resolved by compose-go itself before conversion.
	{path: "services.*.profiles"}, {path: "services.*.extends"},
	{path: "services.*.env_file"}, {path: "services.*.label_file"},

	{path: "services.*.image"},
	{path: "services.*.build.context"}, {path: "services.*.build.dockerfile"},
	{path: "services.*.build.args"}, {path: "services.*.build.target"},
	{path: "services.*.build.labels"},
	{path: "services.*.command"}, {path: "services.*.entrypoint"},
	{path: "services.*.environment"}, {path: "services.*.working_dir"},
	{path: "services.*.user"}, {path: "services.*.hostname"},
	{path: "services.*.labels"},
	{path: "services.*.ports.*.target"}, {path: "services.*.ports.*.published"},
	{path: "services.*.ports.*.protocol"}, {path: "services.*.ports.*.host_ip"},
	{path: "services.*.ports.*.mode"},
	{path: "services.*.deploy.endpoint_mode"},
	{path: "services.*.expose"},
	{path: "services.*.scale"},
	{path: "services.*.deploy.mode"}, {path: "services.*.deploy.replicas"},
	{path: "services.*.deploy.labels"},
	{path: "services.*.cpus"},
	{path: "services.*.mem_limit"},
	{path: "services.*.mem_reservation"},
	{path: "services.*.pids_limit"},
	{path: "services.*.deploy.resources.limits.cpus"},
	{path: "services.*.deploy.resources.limits.memory"},
	{path: "services.*.deploy.resources.limits.pids"},
	{path: "services.*.deploy.resources.reservations.cpus"},
	{path: "services.*.deploy.resources.reservations.memory"},
	{path: "services.*.deploy.restart_policy.condition"},
	{path: "services.*.deploy.restart_policy.delay"},
	{path: "services.*.deploy.restart_policy.max_attempts"},
	{path: "services.*.deploy.restart_policy.window"},
	{path: "services.*.deploy.update_config.parallelism"},
	{path: "services.*.deploy.update_config.delay"},
	{path: "services.*.deploy.update_config.order"},
	{path: "services.*.deploy.update_config.monitor"},
	{path: "services.*.deploy.update_config.max_failure_ratio"},
	{path: "services.*.deploy.update_config.failure_action"},
	{path: "services.*.deploy.rollback_config.parallelism"},
	{path: "services.*.deploy.rollback_config.delay"},
	{path: "services.*.deploy.rollback_config.order"},
	{path: "services.*.deploy.rollback_config.monitor"},
	{path: "services.*.deploy.rollback_config.max_failure_ratio"},
	{path: "services.*.deploy.rollback_config.failure_action"},
	{path: "services.*.deploy.placement.constraints"},
	{path: "services.*.deploy.placement.preferences.*.spread"},
	{path: "services.*.deploy.placement.max_replicas_per_node"},
	{path: "services.*.restart"},
	{path: "services.*.healthcheck.test"}, {path: "services.*.healthcheck.interval"},
	{path: "services.*.healthcheck.timeout"}, {path: "services.*.healthcheck.start_period"},
	{path: "services.*.healthcheck.start_interval"}, {path: "services.*.healthcheck.retries"},
	{path: "services.*.healthcheck.disable"},
	{path: "services.*.depends_on.*.condition"}, {path: "services.*.depends_on.*.required"},
	{path: "services.*.volumes.*.type"}, {path: "services.*.volumes.*.source"},
	{path: "services.*.volumes.*.target"}, {path: "services.*.volumes.*.read_only"},
	{path: "services.*.secrets.*.source"}, {path: "services.*.secrets.*.target"},
	{path: "services.*.secrets.*.uid"}, {path: "services.*.secrets.*.gid"},
	{path: "services.*.secrets.*.mode"},
	{path: "services.*.configs.*.source"}, {path: "services.*.configs.*.target"},
	{path: "services.*.configs.*.uid"}, {path: "services.*.configs.*.gid"},
	{path: "services.*.configs.*.mode"},
	{path: "services.*.networks.*.aliases"},
	{path: "services.*.stop_grace_period"}, {path: "services.*.stop_signal"},
	{path: "services.*.tty"}, {path: "services.*.stdin_open"},
	{path: "services.*.privileged"}, {path: "services.*.init"},
	{path: "services.*.read_only"}, {path: "services.*.cap_add"},
	{path: "services.*.cap_drop"}, {path: "services.*.extra_hosts"},
	{path: "services.*.dns"}, {path: "services.*.tmpfs"},
	{path: "services.*.shm_size"}, {path: "services.*.sysctls"},

	{path: "networks.*.driver"}, {path: "networks.*.internal"},
	{path: "networks.*.external"}, {path: "networks.*.labels"},
	{path: "networks.*.ipam.config.*.subnet"}, {path: "networks.*.ipam.driver"},
	{path: "volumes.*.driver"}, {path: "volumes.*.driver_opts"},
	{path: "volumes.*.external"}, {path: "volumes.*.labels"},
	{path: "secrets.*.file"}, {path: "secrets.*.environment"},
	{path: "secrets.*.external"},
	{path: "configs.*.file"}, {path: "configs.*.environment"},
	{path: "configs.*.content"}, {path: "configs.*.external"},
}, pullPolicyKeys())

type honouredKey struct{ path, only string }

// pullPolicies are the pull_policy values berth honours (compose-go turns
// if_not_present into missing). The others (refresh, daily, weekly,
// every_<duration>) ask the nodes to pull again on a schedule, which
// they do not: reported, and the nodes pull when they lack the image.
var pullPolicies = []string{types.PullAlways, types.PullMissing, types.PullNever, types.PullBuild}

func pullPolicyKeys() []honouredKey {
	out := make([]honouredKey, len(pullPolicies))
	for i, p := range pullPolicies {
		out[i] = honouredKey{path: "services.*.pull_policy", only: p}
	}
	return out
}

// msgPullPolicy is the warning for a pull_policy berth does not honour.
const msgPullPolicy = "not honoured (berth honours always, missing, never and build), ignored: " +
	"the nodes pull the image when they lack it"

// keyMessage is the warning for an unhonoured key at path.
func keyMessage(path string) string {
	if strings.HasPrefix(path, "services.") && strings.HasSuffix(path, ".pull_policy") {
		return msgPullPolicy
	}
	return msgIgnored
}

// unhonouredKeys walks the loaded project as a generic tree and returns a
// Warning for every non-empty key that is not in honoured, sorted by path.
func unhonouredKeys(p *ctypes.Project) ([]Warning, error) {
	tree, err := projectTree(p)
	if err != nil {
		return nil, err
	}
	implied := impliedDependencyKeys(p)
	var warnings []Warning
	walker{report: func(path string) {
		if !implied[path] {
			warnings = append(warnings, Warning{Path: path, Message: keyMessage(path)})
		}
	}}.walk(nil, nil, tree)
	return warnings, nil
}

// msgDriverIgnores is the warning for a key berth reads but the service's
// driver cannot apply.
const msgDriverIgnores = "not honoured by the exec driver (a host process), ignored"

// driverWarnings name every key an exec service sets that a host process
// cannot honour; the driver keeps the list (execdriver.Unhonoured).
func driverWarnings(app *types.App) []Warning {
	var out []Warning
	for _, s := range app.Services {
		if s.Driver != types.DriverExec {
			continue
		}
		for _, key := range execdriver.Unhonoured(s) {
			out = append(out, Warning{Path: "services." + s.Name + "." + key, Message: msgDriverIgnores})
		}
	}
	return out
}

// MsgRestartDefault is the Note for a service that sets no restart policy.
const MsgRestartDefault = "not set: berth restarts the service's failed tasks (on-failure, as Swarm does), " +
	"while Compose's default is restart: \"no\"; write restart: \"no\" to keep them stopped"

// restartNotes are the Notes for services that set neither restart nor
// deploy.restart_policy, sorted by service.
func restartNotes(p *ctypes.Project) []Warning {
	var out []Warning
	for name, s := range p.Services {
		if s.Restart == "" && (s.Deploy == nil || s.Deploy.RestartPolicy == nil) {
			out = append(out, Warning{Path: "services." + name + ".restart", Message: MsgRestartDefault, Note: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// impliedDependencyKeys are the depends_on keys compose-go writes itself:
// for `links: [db]` or `network_mode: service:db` it adds depends_on.db
// with `restart: true`, a key the user never wrote, so it must not be
// reported as theirs. (A depends_on the user wrote is kept as written.)
func impliedDependencyKeys(p *ctypes.Project) map[string]bool {
	out := map[string]bool{}
	for name, s := range p.Services {
		var deps []string
		for _, l := range s.Links {
			dep, _, _ := strings.Cut(l, ":")
			deps = append(deps, dep)
		}
		for _, ns := range []string{s.NetworkMode, s.Ipc, s.Pid, s.Uts, s.Cgroup} {
			if dep, ok := strings.CutPrefix(ns, ctypes.ServicePrefix); ok {
				deps = append(deps, dep)
			}
		}
		for _, dep := range deps {
			out["services."+name+".depends_on."+dep+".restart"] = true
		}
	}
	return out
}

// projectTree is the project as JSON would carry it, as generic maps, less
// the names compose-go fills in.
func projectTree(p *ctypes.Project) (map[string]any, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("inspect compose project %s: %w", p.Name, err)
	}
	var tree map[string]any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, fmt.Errorf("inspect compose project %s: %w", p.Name, err)
	}
	dropDefaultNames(p, tree)
	return tree, nil
}

// dropDefaultNames removes the `name` compose-go fills in for every
// top-level resource ("<project>_<key>"). A name the user chose is kept,
// and so reported, except on external networks and volumes, where berth
// uses it to find the existing resource.
func dropDefaultNames(p *ctypes.Project, tree map[string]any) {
	for _, kind := range []string{"networks", "volumes", "secrets", "configs"} {
		entries, _ := tree[kind].(map[string]any)
		for key, v := range entries {
			entry, ok := v.(map[string]any)
			if !ok {
				continue
			}
			external, _ := entry["external"].(bool)
			keepable := kind == "networks" || kind == "volumes"
			if entry["name"] == p.Name+"_"+key || (external && keepable) {
				delete(entry, "name")
			}
		}
	}
}

// walker visits a project tree. report gets the path of each unhonoured
// non-empty key; covered, when set, the index in honoured of each entry that
// covered a key (the tests use it to prove the table is exercised).
type walker struct {
	report  func(path string)
	covered func(entry int)
}

// walk visits v at path (pattern holds the same segments with list indexes
// as "*").
func (w walker) walk(path, pattern []string, v any) {
	entry, partial := matchHonoured(pattern, v)
	if entry >= 0 {
		if w.covered != nil {
			w.covered(entry)
		}
		return
	}
	if !partial {
		if nonEmpty(v) {
			w.report(displayPath(path))
		}
		return
	}
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			w.walk(append(clip(path), k), append(clip(pattern), k), t[k])
		}
	case []any:
		for i, e := range t {
			w.walk(append(clip(path), "["+strconv.Itoa(i)+"]"), append(clip(pattern), "*"), e)
		}
	}
	// A scalar where honoured keys go below is read by the conversion as a
	// whole (a network attachment given as null, say): nothing to report.
}

// matchHonoured returns the index of the honoured entry that covers
// pattern, or -1 and whether pattern is a strict prefix of some entry (so
// its children must be walked).
func matchHonoured(pattern []string, v any) (entry int, partial bool) {
	for i, h := range honouredPaths {
		n := min(len(h.segs), len(pattern))
		if !segmentsMatch(h.segs[:n], pattern[:n]) {
			continue
		}
		if len(h.segs) > len(pattern) {
			partial = true
			continue
		}
		if h.only == "" || v == h.only {
			return i, false
		}
	}
	return -1, partial
}

type honouredPath struct {
	segs []string
	only string
}

var honouredPaths = func() []honouredPath {
	out := make([]honouredPath, len(honoured))
	for i, h := range honoured {
		out[i] = honouredPath{segs: strings.Split(h.path, "."), only: h.only}
	}
	return out
}()

func segmentsMatch(h, p []string) bool {
	for i := range h {
		if h[i] != "*" && h[i] != p[i] {
			return false
		}
	}
	return true
}

// nonEmpty says whether v holds anything: zero values, nulls and containers
// of only empty things are what compose-go leaves for keys never written.
func nonEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case string:
		return t != ""
	case bool:
		return t
	case float64:
		return t != 0
	case map[string]any:
		for _, e := range t {
			if nonEmpty(e) {
				return true
			}
		}
		return false
	case []any:
		for _, e := range t {
			if nonEmpty(e) {
				return true
			}
		}
		return false
	}
	return true
}

func displayPath(path []string) string {
	var b strings.Builder
	for i, s := range path {
		if i > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// clip returns s with no spare capacity, so appends never share memory.
func clip(s []string) []string { return s[:len(s):len(s)] }
