package execdriver

import "github.com/berth-dev/berth/internal/types"

// Unhonoured returns the Compose keys set on s that a host process cannot
// honour, in the order of the Compose file reference, so `berth config` and
// `berth up` warn about each instead of dropping it without a word. It is
// the one list of what this driver ignores: a key it learns to honour is
// taken off here.
func Unhonoured(s *types.Service) []string {
	var out []string
	add := func(key string, set bool) {
		if set {
			out = append(out, key)
		}
	}
	add("image", s.Image != "")
	add("user", s.User != "")
	add("hostname", s.Hostname != "")
	add("labels", len(s.Labels) > 0)
	add("ports", len(s.Ports) > 0)
	add("expose", len(s.Expose) > 0)
	add("volumes", len(s.Mounts) > 0)
	add("networks", hasOwnNetworks(s.Networks))
	add("deploy.resources.limits", s.Resources.Limits != types.ResourceAmounts{})
	add("tty", s.Tty)
	add("stdin_open", s.StdinOpen)
	add("privileged", s.Privileged)
	add("init", s.Init)
	add("read_only", s.ReadOnly)
	add("cap_add", len(s.CapAdd) > 0)
	add("cap_drop", len(s.CapDrop) > 0)
	add("extra_hosts", len(s.ExtraHosts) > 0)
	add("dns", len(s.DNS) > 0)
	add("tmpfs", len(s.Tmpfs) > 0)
	add("shm_size", s.ShmSize != 0)
	add("sysctls", len(s.Sysctls) > 0)
	return out
}

// hasOwnNetworks: Compose puts every service on "default" without being
// asked, so only other networks, or aliases, are something the user wrote.
func hasOwnNetworks(nets []types.NetworkAttachment) bool {
	for _, n := range nets {
		if n.Name != "default" || len(n.Aliases) > 0 {
			return true
		}
	}
	return false
}
