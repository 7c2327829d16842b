package cluster

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// Helpers the cluster scenarios share.

// electionBound is how soon after the leader dies another must lead (on
// loopback).
const electionBound = 5 * time.Second

// otherThan returns the first manager of ms that is not m.
func otherThan(ms []*harness.Manager, m *harness.Manager) *harness.Manager {
	for _, o := range ms {
		if o != m {
			return o
		}
	}
	return nil
}

// all is a condition that holds when every one of conds does.
func all(conds ...func() error) func() error {
	return func() error {
		for _, cond := range conds {
			if err := cond(); err != nil {
				return err
			}
		}
		return nil
	}
}

// assertSameTasks checks that every task running in before still runs in
// after, with the same ID, node, attempt and process: nothing restarted.
// It returns how many were restarted.
func assertSameTasks(t *testing.T, before, after []*types.Task) (restarted int) {
	t.Helper()
	changed := harness.Restarted(before, after)
	for _, r := range changed {
		t.Error(r)
	}
	return len(changed)
}
