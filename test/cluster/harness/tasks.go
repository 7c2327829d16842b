package harness

import (
	"fmt"
	"sort"
	"strings"

	e2e "github.com/berth-dev/berth/test/e2e/harness"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// Tasks lists every task of app (old ones too) through m's API.
func (c *Cluster) Tasks(m *Manager, app string) ([]*types.Task, error) {
	ctx, cancel := callCtx()
	defer cancel()
	ts, _, err := m.Client().ListTasks(ctx, api.TaskQuery{App: app})
	return ts, err
}

// ExpectRunning is a WaitFor condition on m: service of app has exactly n
// running tasks and no other task of it is meant to run or on its way.
func (c *Cluster) ExpectRunning(m *Manager, app, service string, n int) func() error {
	return func() error {
		tasks, err := c.Tasks(m, app)
		if err != nil {
			return err
		}
		up := len(Running(tasks, service))
		live := len(Live(tasks, service))
		if up != n || live != n {
			return fmt.Errorf("%s: %d running, %d not finished, want %d: %s", service, up, live, n, Describe(tasks))
		}
		return nil
	}
}

// Running returns the tasks of service that run and are meant to.
func Running(tasks []*types.Task, service string) []*types.Task {
	var out []*types.Task
	for _, t := range tasks {
		if t.Service == service && t.State == types.TaskRunning && t.DesiredState == types.DesiredRunning {
			out = append(out, t)
		}
	}
	return out
}

// Live returns the tasks of service that are not finished: running, or
// on their way to run or to stop.
func Live(tasks []*types.Task, service string) []*types.Task {
	var out []*types.Task
	for _, t := range tasks {
		if t.Service == service && !t.State.Terminal() {
			out = append(out, t)
		}
	}
	return out
}

// Describe renders tasks on one line, for failure messages.
func Describe(tasks []*types.Task) string {
	sorted := append([]*types.Task(nil), tasks...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name() < sorted[j].Name() })
	parts := make([]string, 0, len(sorted))
	for _, t := range sorted {
		node := t.NodeID
		if len(node) > 8 {
			node = node[:8]
		}
		s := fmt.Sprintf("%s#%d@%s=%s/%s", t.Name(), t.Attempt, node, t.State, t.DesiredState)
		for _, why := range []string{t.Error, t.PendingReason} {
			if why != "" {
				s += "[" + why + "]"
			}
		}
		parts = append(parts, s)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TaskPID is the host process ID of an exec-driver task ("pid:<n>").
func TaskPID(t *types.Task) (int, error) { return e2e.TaskPID(t) }

// Apps lists the names of the apps m knows, sorted.
func (c *Cluster) Apps(m *Manager) ([]string, error) {
	ctx, cancel := callCtx()
	defer cancel()
	apps, err := m.Client().ListApps(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(apps))
	for _, a := range apps {
		names = append(names, a.Name)
	}
	sort.Strings(names)
	return names, nil
}

// ExpectApps is a WaitFor condition: m knows exactly the apps names.
func (c *Cluster) ExpectApps(m *Manager, names ...string) func() error {
	want := append([]string(nil), names...)
	sort.Strings(want)
	return func() error {
		have, err := c.Apps(m)
		if err != nil {
			return err
		}
		if strings.Join(have, ",") != strings.Join(want, ",") {
			return fmt.Errorf("%s has apps %v, want %v", m.Name, have, want)
		}
		return nil
	}
}
