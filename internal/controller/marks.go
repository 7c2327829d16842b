package controller

import (
	"maps"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// marks is what the reconciler remembers between passes so that a pass
// visits the apps whose state changed (their state.AppWork key moved),
// whose time came (a restart's backoff, a replica about to count as up, a
// rollout's monitor) and, for placement, those with tasks still pending,
// instead of every app on every change: a pass over 300 apps for each
// report of each new replica was 38% of the leader's CPU, and the 300th of
// 300 apps deployed one after another took 1.9 times the first (issue 20).
//
// An app's pass reads its own record, tasks, deployments and pins (its
// key) and the nodes (global services, drains, teardowns): a change of the
// nodes table visits every app. What a pass decides from the clock it says
// with wakeAt, as before: an idle cluster runs no pass at all otherwise.
// Placement is the one thing that crosses apps (a task that did not fit
// may fit once another app's task ends), so apps with pending tasks are
// looked at on every pass, as every app was.
type marks struct {
	// nodes is TableNodes' index at the last pass; 0 before the first.
	nodes uint64
	// seen is each app's AppWork index when it was last visited.
	seen map[string]uint64
	// wake is when each app's last visit asked to look again.
	wake map[string]time.Time
	// pending are the apps the last placement found pending tasks of.
	pending map[string]bool
}

// fullNext reports whether a pass over view would visit every app: the
// nodes changed, or this is the first pass.
func (m *marks) fullNext(view *state.View) bool {
	return m.seen == nil || view.Index(state.TableNodes) != m.nodes
}

// next starts the marks of a pass over view: full when the nodes changed
// (or on the first pass), when every app is visited.
func (m *marks) next(view *state.View) (next *marks, full bool) {
	next = &marks{nodes: view.Index(state.TableNodes), seen: map[string]uint64{}, wake: map[string]time.Time{}, pending: m.pending}
	return next, m.fullNext(view)
}

// toVisit lists the apps a pass over view visits, by name, and every
// app's key (state.View.AppWork). A full pass visits every app; another
// those due (below), found from the keys and the wake times alone, so a
// pass that visits a few of 10,000 apps reads only those.
func (m *marks) toVisit(next *marks, view *state.View, full bool, now time.Time) (apps []*types.App, keys map[string]uint64) {
	keys = view.AppWork()
	if full {
		return view.Apps(), keys
	}
	names := map[string]bool{}
	for name, idx := range keys {
		if m.due(next, name, idx, now) {
			names[name] = true
		}
	}
	for name, at := range m.wake {
		if _, keyed := keys[name]; keyed {
			continue // due said
		}
		if now.Before(at) {
			next.wake[name] = at // an app without a key: its time is still to come
		} else {
			names[name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		if app := view.App(name); app != nil {
			apps = append(apps, app)
		}
	}
	return apps, keys
}

// due reports whether app must be visited, its key at idx: it changed
// since the last visit (a key that went back, after a restore, counts) or
// its wake time has come. Otherwise next keeps what the last visit left.
func (m *marks) due(next *marks, app string, idx uint64, now time.Time) bool {
	seen, ok := m.seen[app]
	wake := m.wake[app]
	if ok && seen == idx && (wake.IsZero() || now.Before(wake)) {
		next.seen[app] = seen
		if !wake.IsZero() {
			next.wake[app] = wake
		}
		return false
	}
	return true
}

// visited records that app was visited with its key at idx, and when it
// asked to be looked at again (zero: never by itself).
func (m *marks) visited(app string, idx uint64, wake time.Time) {
	m.seen[app] = idx
	if !wake.IsZero() {
		m.wake[app] = wake
	}
}

// earliest is the first wake time of any app, zero for none.
func (m *marks) earliest() time.Time {
	var first time.Time
	for _, t := range m.wake {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}
