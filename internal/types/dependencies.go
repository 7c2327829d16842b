package types

import "slices"

// DependencyCycle returns a depends_on cycle of the app as the services
// along it, the first repeated at the end ([a b a]), or nil when there is
// none. A cycle holds every service in it back for ever, so the CLI (before
// submit) and the manager (at submit) refuse it with this one rule. The
// search follows the order of Services and of each DependsOn, so the same
// app always names the same cycle.
func (a *App) DependencyCycle() []string {
	const (
		visiting = 1
		done     = 2
	)
	mark := map[string]int{}
	var visit func(name string, trail []string) []string
	visit = func(name string, trail []string) []string {
		switch mark[name] {
		case visiting:
			// The trail may start before the cycle (x -> a -> b -> a):
			// only the services in it are named.
			trail = append(trail, name)
			return trail[slices.Index(trail, name):]
		case done:
			return nil
		}
		mark[name] = visiting
		if svc := a.Service(name); svc != nil {
			for _, d := range svc.DependsOn {
				if cycle := visit(d.Service, append(trail, name)); cycle != nil {
					return cycle
				}
			}
		}
		mark[name] = done
		return nil
	}
	for _, svc := range a.Services {
		if cycle := visit(svc.Name, nil); cycle != nil {
			return cycle
		}
	}
	return nil
}
