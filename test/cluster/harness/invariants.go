package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// The invariants every fault scenario checks once its fault is over:
//
//   - CheckWrites: every acknowledged write is on every manager.
//   - CheckManagers: no manager bricked (each one the test did not stop
//     runs and answers) and none diverged (all reach the same applied index
//     with the same apps, tasks and nodes).
//   - Restarted: no task that ran before the fault was restarted.
//
// and during the fault, Watch samples what the managers and the hosts show:
// no node marked down, no two processes of one slot running at once for
// longer than the test allows. Figure logs a scenario's measurements in one
// line that docs/reliability.md is filled from.

// CheckWrites waits up to timeout until every manager that runs and is not
// paused lists every app of acked, and returns how many of them the worst
// manager still lacks then (0 when none is lost); a lost write fails tb.
func (c *Cluster) CheckWrites(tb testing.TB, acked []string, timeout time.Duration) (lost int) {
	tb.Helper()
	err := Poll(timeout, func() error {
		lost = 0
		var errs []string
		for _, m := range c.Live() {
			missing, err := c.missingApps(m, acked)
			if err != nil {
				lost = max(lost, len(acked))
				errs = append(errs, fmt.Sprintf("%s: %v", m.Name, err))
				continue
			}
			lost = max(lost, len(missing))
			if len(missing) > 0 {
				errs = append(errs, fmt.Sprintf("%s lacks %d acknowledged writes: %s", m.Name, len(missing), abbreviate(missing)))
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		return nil
	})
	if err != nil {
		tb.Errorf("acknowledged writes lost after %s: %v", timeout, err)
	}
	return lost
}

// missingApps returns the names of want that m does not list.
func (c *Cluster) missingApps(m *Manager, want []string) ([]string, error) {
	have, err := c.Apps(m)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(have))
	for _, n := range have {
		set[n] = true
	}
	var missing []string
	for _, n := range want {
		if !set[n] {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

// abbreviate renders the first few names of a long list.
func abbreviate(names []string) string {
	const show = 5
	if len(names) <= show {
		return strings.Join(names, " ")
	}
	return fmt.Sprintf("%s ... (%d more)", strings.Join(names[:show], " "), len(names)-show)
}

// CheckManagers waits up to timeout until no manager has bricked and none
// diverged (ExpectConverged), failing tb otherwise, and returns the index
// they agree on.
func (c *Cluster) CheckManagers(tb testing.TB, timeout time.Duration) uint64 {
	tb.Helper()
	var index uint64
	WaitFor(tb, timeout, "every manager up and converged", func() error {
		var err error
		index, err = c.converged()
		return err
	})
	return index
}

// ExpectConverged is a WaitFor condition: every manager the test did not
// stop runs (one that exited by itself has bricked: its log says why), and
// every one that is not paused answers with the same applied Raft index and
// the same apps, tasks and nodes as the others.
func (c *Cluster) ExpectConverged() func() error {
	return func() error {
		_, err := c.converged()
		return err
	}
}

func (c *Cluster) converged() (uint64, error) {
	for _, m := range c.Managers {
		if m.Crashed() {
			return 0, fmt.Errorf("%s exited by itself:\n%s", m.Name, m.Log(30))
		}
	}
	var first *Manager
	var want stateDigest
	for _, m := range c.Live() {
		d, err := digestOf(m)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", m.Name, err)
		}
		if first == nil {
			first, want = m, d
			continue
		}
		if d.index != want.index {
			return 0, fmt.Errorf("%s has applied index %d, %s %d", m.Name, d.index, first.Name, want.index)
		}
		if d.sum != want.sum {
			return 0, fmt.Errorf("%s and %s DIVERGE: same index %d, different state", m.Name, first.Name, d.index)
		}
	}
	if first == nil {
		return 0, fmt.Errorf("no manager runs")
	}
	return want.index, nil
}

// stateDigest is a manager's applied index and a hash of what it serves at
// that index.
type stateDigest struct {
	index uint64
	sum   string
}

// digestOf reads m's index, then its state, then its index again: the two
// indexes agree when nothing was applied meanwhile, and the state is then
// the state at that index.
func digestOf(m *Manager) (stateDigest, error) {
	ctx, cancel := callCtx()
	defer cancel()
	c := m.Client()
	before, err := c.Status(ctx)
	if err != nil {
		return stateDigest{}, err
	}
	sum, err := stateSum(ctx, c)
	if err != nil {
		return stateDigest{}, err
	}
	after, err := c.Status(ctx)
	if err != nil {
		return stateDigest{}, err
	}
	if before.Index != after.Index {
		return stateDigest{}, fmt.Errorf("still applying (index %d, then %d)", before.Index, after.Index)
	}
	return stateDigest{index: after.Index, sum: sum}, nil
}

// stateSum hashes the apps, tasks and nodes as m serves them, leaving out
// what each manager keeps in memory only (a node's last heartbeat).
func stateSum(ctx context.Context, c *api.Client) (string, error) {
	apps, err := c.ListApps(ctx)
	if err != nil {
		return "", err
	}
	tasks, _, err := c.ListTasks(ctx, api.TaskQuery{})
	if err != nil {
		return "", err
	}
	nodes, err := c.ListNodes(ctx)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		n.LastHeartbeat = time.Time{}
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].ID < tasks[j].ID })
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	b, err := json.Marshal(struct {
		Apps  []*types.App
		Tasks []*types.Task
		Nodes []*types.Node
	}{apps, tasks, nodes})
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// Restarted describes every task that ran in before and, in after, is gone,
// no longer running, or runs as another attempt, node or process: the
// tasks a fault restarted. Nil means none was.
func Restarted(before, after []*types.Task) []string {
	byID := map[string]*types.Task{}
	for _, a := range after {
		byID[a.ID] = a
	}
	var out []string
	for _, b := range before {
		if b.State != types.TaskRunning {
			continue
		}
		a, ok := byID[b.ID]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("task %s (%s) is gone", b.Name(), b.ID))
		case a.State != types.TaskRunning || a.DesiredState != types.DesiredRunning:
			out = append(out, fmt.Sprintf("task %s is %s/%s, was running", a.Name(), a.State, a.DesiredState))
		case a.Attempt != b.Attempt || a.NodeID != b.NodeID || a.ContainerID != b.ContainerID:
			out = append(out, fmt.Sprintf("task %s changed: attempt %d->%d, node %s->%s, process %s->%s",
				a.Name(), b.Attempt, a.Attempt, b.NodeID, a.NodeID, b.ContainerID, a.ContainerID))
		}
	}
	return out
}

// Figure logs a scenario's measurements as one line,
//
//	FIGURE scenario=leader-kill writes_acked=150 lost=0 new_leader_ms=2093
//
// kv alternates keys and values; durations are logged in whole
// milliseconds. `go test -v ./test/cluster/ | grep FIGURE` collects them.
func Figure(tb testing.TB, scenario string, kv ...any) {
	tb.Helper()
	var b strings.Builder
	b.WriteString("FIGURE scenario=" + scenario)
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if d, ok := v.(time.Duration); ok {
			v = d.Milliseconds()
		}
		fmt.Fprintf(&b, " %v=%v", kv[i], v)
	}
	if len(kv)%2 != 0 {
		tb.Errorf("Figure %s: odd number of keys and values %v", scenario, kv)
	}
	tb.Log(b.String())
}
