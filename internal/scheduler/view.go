package scheduler

import (
	"github.com/berth-dev/berth/internal/types"
)

// serviceView is a service's spec parsed once into the form the filters and
// scores read.
type serviceView struct {
	driver      string
	constraints []constraint
	prefs       []string // label keys to spread over, outermost first
	maxPerNode  int32    // 0: no limit
	demand
	// invalid, when set, says why no task of the service can be placed
	// anywhere (a constraint or preference that does not parse).
	invalid string
}

func newServiceView(svc *types.Service) *serviceView {
	v := &serviceView{
		driver:     svc.Driver,
		maxPerNode: int32(svc.Placement.MaxReplicasPerNode),
		demand:     demandOf(svc),
	}
	if v.driver == "" {
		v.driver = types.DriverDocker
	}
	for _, s := range svc.Placement.Constraints {
		c, err := parseConstraint(s)
		if err != nil {
			v.invalid = err.Error()
			return v
		}
		v.constraints = append(v.constraints, c)
	}
	for _, s := range svc.Placement.Preferences {
		key, err := parsePreference(s)
		if err != nil {
			v.invalid = err.Error()
			return v
		}
		v.prefs = append(v.prefs, key)
	}
	return v
}
