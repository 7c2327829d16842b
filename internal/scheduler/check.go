package scheduler

import (
	"fmt"

	"github.com/berth-dev/berth/internal/types"
)

// PlacementError names the constraint or preference of a placement that
// the scheduler cannot read.
type PlacementError struct {
	Field string // "constraints[1]" or "preferences[0]"
	Err   error
}

func (e *PlacementError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *PlacementError) Unwrap() error { return e.Err }

// CheckPlacement parses a placement with the parser the scheduler places
// with, so a typo is refused when the app is submitted (or by `berth
// config`) instead of leaving its tasks pending with the reason. It returns
// a *PlacementError for the first entry that does not parse.
func CheckPlacement(p types.Placement) error {
	for i, s := range p.Constraints {
		if _, err := parseConstraint(s); err != nil {
			return &PlacementError{Field: fmt.Sprintf("constraints[%d]", i), Err: err}
		}
	}
	for i, s := range p.Preferences {
		if _, err := parsePreference(s); err != nil {
			return &PlacementError{Field: fmt.Sprintf("preferences[%d]", i), Err: err}
		}
	}
	return nil
}
