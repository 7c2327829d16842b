package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

type logsOptions struct {
	follow       bool
	tail         int
	timestamps   bool
	since, until string
	noColor      bool
	noLogPrefix  bool
	// from and to are since and until resolved, once, against the clock.
	from, to time.Time
}

func newLogsCommand(e *env) *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs [SERVICE...]",
		Short: "Print the output of the app's replicas",
		Long: `Print the output of every replica (the latest task of each), all at once,
each line prefixed with the replica's name as docker compose does. With -f,
keep following, and attach to replicas that start later.

--since and --until keep the lines written in a window: an RFC 3339 time
(2026-11-25T02:00:00Z), a Unix time, or a duration back from now (10m,
1h30m), as docker logs takes them. Tasks of the exec driver keep no time
for their lines and refuse them. --no-color prints the prefixes without
colors; --no-log-prefix prints the lines bare.`,
		Example: "  berth logs\n  berth logs -f web\n  berth logs --tail 20 -t web worker\n  berth logs --since 10m --until 2m --no-log-prefix web",
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.logs(cmd.Context(), args, o)
		},
	}
	f := cmd.Flags()
	// -f means --follow here, as in docker compose logs; the Compose file
	// is still --file, or -f before the verb (see normalizeArgs). Declaring
	// --file locally keeps cobra from merging the global -f shorthand.
	f.StringArrayVar(&e.global.files, "file", nil, "Compose file (repeatable)")
	f.BoolVarP(&o.follow, "follow", "f", false, "keep printing new output")
	f.IntVarP(&o.tail, "tail", "n", 0, "print only the last N lines of each replica (0: all)")
	f.BoolVarP(&o.timestamps, "timestamps", "t", false, "show timestamps")
	f.StringVar(&o.since, "since", "", "print lines since a time (2026-11-25T02:00:00Z) or a duration back from now (10m)")
	f.StringVar(&o.until, "until", "", "print lines until a time (2026-11-25T02:00:00Z) or a duration back from now (10m)")
	f.BoolVar(&o.noColor, "no-color", false, "print the prefixes without colors")
	f.BoolVar(&o.noLogPrefix, "no-log-prefix", false, "print the lines without the replica's name")
	return cmd
}

func (e *env) logs(ctx context.Context, services []string, o logsOptions) error {
	var err error
	if o.from, err = parseLogTime("--since", o.since, e.now()); err != nil {
		return err
	}
	if o.to, err = parseLogTime("--until", o.until, e.now()); err != nil {
		return err
	}
	if !o.from.IsZero() && !o.to.IsZero() && o.to.Before(o.from) {
		return fmt.Errorf("--until is before --since, so no line can be in between; swap them")
	}
	name, err := e.appName(ctx)
	if err != nil {
		return err
	}
	c := e.client()
	if err := checkServices(ctx, c, name, services); err != nil {
		return err
	}
	tasks, meta, err := c.ListTasks(ctx, api.TaskQuery{App: name})
	if err != nil {
		return err
	}
	nodes, err := c.ListNodes(ctx)
	if err != nil {
		return err
	}
	ls := &logSession{
		e: e, c: c, opts: o, nodes: nodeNames(nodes),
		out:      newPrefixWriter(e.stdout, !o.noColor && e.isTTY(e.stdout)),
		attached: map[string]bool{},
	}
	ls.out.bare = o.noLogPrefix
	ls.attach(ctx, logTasks(tasks, services))
	if o.follow {
		err = ls.followNew(ctx, name, services, meta.Index)
	}
	ls.wg.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if n := ls.failedCount(); n > 0 {
		return fmt.Errorf("the logs of %s could not be read (see above)", countOf(n, "task", "tasks"))
	}
	return nil
}

// checkServices fails when the app is not deployed or lacks a named
// service, rather than printing nothing.
func checkServices(ctx context.Context, c *api.Client, app string, services []string) error {
	a, err := c.GetApp(ctx, app)
	if errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("app %s is not deployed; deploy it with berth up", app)
	}
	if err != nil {
		return err
	}
	for _, s := range services {
		if a.Service(s) == nil {
			return fmt.Errorf("app %s has no service %s", app, s)
		}
	}
	return nil
}

// logTasks picks the latest task with output of each replica of the named
// services (every service when none is named).
func logTasks(tasks []*types.Task, services []string) []*types.Task {
	latest := map[string]*types.Task{}
	for _, t := range tasks {
		if len(services) > 0 && !slices.Contains(services, t.Service) || !hasOutput(t) {
			continue
		}
		k := t.Service + "/" + slotKey(t)
		if cur, ok := latest[k]; !ok || newer(t, cur) {
			latest[k] = t
		}
	}
	out := make([]*types.Task, 0, len(latest))
	for _, t := range latest {
		out = append(out, t)
	}
	sortTasks(out)
	return out
}

// hasOutput says whether a task's agent holds output for it: it ran. A
// task not yet started (pending, assigned, starting: the agent may not have
// it yet) or rejected (nothing was run) has none, so asking would only fail;
// logs -f attaches to it once it runs.
func hasOutput(t *types.Task) bool {
	switch t.State {
	case types.TaskRunning, types.TaskComplete, types.TaskFailed, types.TaskShutdown, types.TaskLost:
		return true
	}
	return false
}

// logSession owns the goroutines streaming each task's output; wg waits
// for all of them.
type logSession struct {
	e     *env
	c     *api.Client
	opts  logsOptions
	nodes map[string]string
	out   *prefixWriter
	wg    sync.WaitGroup

	mu       sync.Mutex
	attached map[string]bool // task IDs
	failed   int
}

func (ls *logSession) attach(ctx context.Context, tasks []*types.Task) {
	for _, t := range tasks {
		ls.out.grow(logPrefix(t))
	}
	for _, t := range tasks {
		ls.mu.Lock()
		seen := ls.attached[t.ID]
		ls.attached[t.ID] = true
		ls.mu.Unlock()
		if seen {
			continue
		}
		ls.wg.Add(1)
		go func() {
			defer ls.wg.Done()
			ls.stream(ctx, t)
		}()
	}
}

func (ls *logSession) stream(ctx context.Context, t *types.Task) {
	rc, err := ls.c.TaskLogs(ctx, t.ID, api.LogOptions{Follow: ls.opts.follow, Tail: ls.opts.tail, Timestamps: ls.opts.timestamps,
		Since: ls.opts.from, Until: ls.opts.to})
	if err == nil {
		err = ls.out.copyLines(logPrefix(t), rc)
		rc.Close()
	}
	if err == nil || ctx.Err() != nil {
		return
	}
	ls.mu.Lock()
	ls.failed++
	ls.mu.Unlock()
	fmt.Fprintf(ls.e.stderr, "warning: cannot read the logs of %s on node %s: %s\n",
		t.Name(), nodeName(t.NodeID, ls.nodes), describeError(err, ls.e))
}

func (ls *logSession) failedCount() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.failed
}

// followNew attaches to tasks that appear after the first listing (new
// replicas, restarts) until ctx is done.
func (ls *logSession) followNew(ctx context.Context, app string, services []string, index uint64) error {
	for {
		tasks, meta, err := ls.c.ListTasks(ctx, api.TaskQuery{App: app, QueryOptions: api.QueryOptions{Index: index, Wait: blockingWait}})
		if err != nil {
			return err
		}
		var fresh []*types.Task
		for _, t := range logTasks(tasks, services) {
			// A new replica is attached once it runs: before that its
			// agent may not hold it yet (a scale-up's pending or
			// starting task), and asking would fail. The listing comes
			// back when it starts, since that moves the index.
			if t.State == types.TaskRunning {
				fresh = append(fresh, t)
			}
		}
		ls.attach(ctx, fresh)
		if err := pace(ctx, &index, meta.Index); err != nil {
			return err
		}
	}
}

// logPrefix names a replica as docker compose does: "web-1", or
// "web-<node>" for a global service.
func logPrefix(t *types.Task) string {
	if t.Slot == 0 {
		return t.Service + "-" + t.NodeID[:min(len(t.NodeID), 8)]
	}
	return fmt.Sprintf("%s-%d", t.Service, t.Slot)
}

// parseLogTime reads a --since or --until value as docker does: an RFC 3339
// time (with or without the zone or the time of day), a Unix time in
// seconds (with a fraction), or a duration back from now. "" is no bound.
func parseLogTime(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%s takes a duration back from now such as 10m, not %q", flag, v)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		whole := int64(secs)
		return time.Unix(whole, int64((secs-float64(whole))*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("%s takes a time (2026-11-25T02:00:00Z), a Unix time or a duration back from now (10m), not %q", flag, v)
}
