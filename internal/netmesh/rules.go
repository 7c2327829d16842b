package netmesh

import (
	"fmt"
	"strconv"
	"strings"
)

// ServiceNames are the names one service answers to on one network, as
// Compose gives them: the service's name and the attachment's aliases.
type ServiceNames struct {
	Name    string
	Aliases []string
}

// CheckNames is the rule the agent's DNS needs of one app's services on one
// network, for Compose to check at load time (the error names the
// service and the alias): every name is a DNS name, and no name is
// claimed twice. Docker's DNS answers a name two services claim with both
// services' containers; the agent's answers one VIP per name, so the
// claim is refused instead of answered at random. An alias may not take a
// shape berth gives names of its own (tasks.SERVICE, SLOT.SERVICE).
func CheckNames(services []ServiceNames) error {
	owner := map[string]string{}
	claim := func(name, by string) error {
		key := strings.ToLower(strings.TrimSuffix(name, "."))
		if prev, ok := owner[key]; ok && prev != by {
			return fmt.Errorf("service %s: the name %q is service %s's already on this network; give one of them another alias", by, name, prev)
		}
		owner[key] = by
		return nil
	}
	for _, s := range services {
		if !validLabel(s.Name) {
			return fmt.Errorf("service %q: the name is not a DNS label (letters, digits, '-' and '_', at most 63)", s.Name)
		}
		if err := claim(s.Name, s.Name); err != nil {
			return err
		}
	}
	for _, s := range services {
		if len(s.Aliases) > MaxAliases {
			return fmt.Errorf("service %s: %d aliases on one network, at most %d", s.Name, len(s.Aliases), MaxAliases)
		}
		for _, a := range s.Aliases {
			if !validName(a) {
				return fmt.Errorf("service %s: alias %q is not a DNS name", s.Name, a)
			}
			if first, _, ok := strings.Cut(a, "."); ok && (first == "tasks" || isNumber(first)) {
				return fmt.Errorf("service %s: alias %q has the shape of a name berth gives (tasks.SERVICE, SLOT.SERVICE); pick another", s.Name, a)
			}
			if err := claim(a, s.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}
