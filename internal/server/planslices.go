package server

import (
	"fmt"

	"github.com/berth-dev/berth/internal/ipam"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// sliceTrial tells the plan applier whether a placement's node has, or can
// get, a slice of each network of the task's service, as the FSM will
// allocate them in the plan's entry (state.TaskUpdates does the same and
// stays the judge). A placement that cannot is left pending with the
// pool's reason, and the rest of the plan goes on; without the trial it
// would cost a Raft entry each pass only for the FSM to refuse it again.
// The pool is copied on the first placement that needs a new slice, so a
// plan that lands where its networks already are copies nothing.
type sliceTrial struct {
	view   *state.View
	pool   *ipam.Pool
	copied bool
}

func newSliceTrial(view *state.View) *sliceTrial {
	return &sliceTrial{view: view, pool: view.Pool()}
}

// admit takes the node's slices for the task in the trial's pool, or
// returns why it cannot: the same sentence the FSM would write.
func (s *sliceTrial) admit(t *types.Task, svc *types.Service, node string) error {
	app := s.view.App(t.App)
	if app == nil {
		return nil
	}
	for _, att := range svc.Networks {
		key := app.NetworkKey(att.Name)
		if _, ok := s.pool.Subnet(key); !ok {
			continue
		}
		if _, ok := s.pool.Slice(key, node); ok {
			continue
		}
		if !s.copied {
			s.pool, s.copied = s.pool.Clone(), true
		}
		if _, err := s.pool.AddNode(key, node); err != nil {
			return fmt.Errorf("no address for the task: %w", err)
		}
	}
	return nil
}
