package cli

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// finishedTasks is the set of the app's tasks that have already ended, read
// before an attached up submits: their exits are old news, not the exit
// that ends this up.
func finishedTasks(ctx context.Context, c *api.Client, app string) (map[string]bool, error) {
	tasks, _, err := c.ListTasks(ctx, api.TaskQuery{App: app})
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	for _, t := range tasks {
		if t.State.Terminal() {
			done[t.ID] = true
		}
	}
	return done, nil
}

// attachUp is up --abort-on-container-exit (and --exit-code-from), as
// docker compose does it: the output of app's replicas streams until the
// first container exits by itself (restart policy or not); then app's
// services are stopped (as berth stop; the next up starts them) and up
// exits with that container's code, or with the code of the container of
// the service --exit-code-from names. done are the tasks that had ended
// before the submission.
func (e *env) attachUp(ctx context.Context, c *api.Client, app *types.App, done map[string]bool, o upOptions) error {
	nodes, err := c.ListNodes(ctx)
	if err != nil {
		return err
	}
	logCtx, stopLogs := context.WithCancel(ctx)
	ls := &logSession{
		e: e, c: c, opts: logsOptions{follow: true}, nodes: nodeNames(nodes),
		out:      newPrefixWriter(e.stdout, e.isTTY(e.stdout)),
		attached: map[string]bool{},
	}
	defer func() {
		stopLogs()
		ls.wg.Wait()
	}()
	services := names(app.Services)
	var index uint64
	for {
		tasks, meta, err := c.ListTasks(ctx, api.TaskQuery{App: app.Name, QueryOptions: api.QueryOptions{Index: index, Wait: blockingWait}})
		if err != nil {
			return err
		}
		ls.attach(logCtx, fresh(logTasks(tasks, services), done))
		if t := rejected(tasks, services, done); t != nil { // no container to wait for
			return fmt.Errorf("replica %s was rejected: %s; see berth ps -a", t.Name(), orUnknown(t.Error))
		}
		if t := firstExit(tasks, services, done); t != nil {
			fmt.Fprintf(e.stdout, "%s exited with code %d\nAborting on container exit...\n", t.Name(), *t.ExitCode)
			err := e.abortUp(ctx, c, app, t, done, o)
			drain(&ls.wg, logDrain) // the stopped containers' last output
			return err
		}
		if err := pace(ctx, &index, meta.Index); err != nil {
			return err
		}
	}
}

// logDrain bounds the wait for the output streams of an aborted up to end
// by themselves once their containers stopped.
const logDrain = 5 * time.Second

// drain waits until wg is done, at most d.
func drain(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

// fresh drops the tasks in done: their output is from before this up.
func fresh(tasks []*types.Task, done map[string]bool) []*types.Task {
	var out []*types.Task
	for _, t := range tasks {
		if !done[t.ID] {
			out = append(out, t)
		}
	}
	return out
}

// firstExit is the task of services that exited by itself first (its own
// exit code; not stopped by the cluster) and is not in done.
func firstExit(tasks []*types.Task, services []string, done map[string]bool) *types.Task {
	var first *types.Task
	for _, t := range tasks {
		if done[t.ID] || !exitedByItself(t) || !slices.Contains(services, t.Service) {
			continue
		}
		if first == nil || t.FinishedAt.Before(first.FinishedAt) {
			first = t
		}
	}
	return first
}

// rejected is a task of services its node refused to start (a missing
// image, say), not in done.
func rejected(tasks []*types.Task, services []string, done map[string]bool) *types.Task {
	for _, t := range tasks {
		if t.State == types.TaskRejected && !done[t.ID] && slices.Contains(services, t.Service) {
			return t
		}
	}
	return nil
}

func exitedByItself(t *types.Task) bool {
	return (t.State == types.TaskComplete || t.State == types.TaskFailed) && t.ExitCode != nil
}

// abortUp stops app's services after exited ended the attached up, as
// berth stop does (with up's -t), waits until their tasks have stopped, and
// returns the exit code up ends with.
func (e *env) abortUp(ctx context.Context, c *api.Client, app *types.App, exited *types.Task, done map[string]bool, o upOptions) error {
	req := api.LifecycleRequest{Services: names(app.Services)}
	if o.stopGrace >= 0 {
		req.TimeoutSeconds = &o.stopGrace
	}
	res, err := c.StopServices(ctx, app.Name, req)
	if err != nil {
		return fmt.Errorf("stop the services of app %s: %w", app.Name, err)
	}
	if err := e.waitStopped(ctx, c, app.Name, res.Services); err != nil { // lifecycle.go
		return err
	}
	code := *exited.ExitCode
	if o.exitCodeFrom != "" {
		tasks, _, err := c.ListTasks(ctx, api.TaskQuery{App: app.Name})
		if err != nil {
			return err
		}
		t := serviceExit(tasks, o.exitCodeFrom, done)
		if t == nil {
			return fmt.Errorf("no container of service %s exited with a code; see berth ps -a", o.exitCodeFrom)
		}
		code = *t.ExitCode
	}
	if code == 0 {
		return nil
	}
	return &exitCodeError{code: code}
}

// serviceExit is the task of service whose exit code up reports: the
// first that exited by itself, else the newest that ended with a code
// (stopped by the abort).
func serviceExit(tasks []*types.Task, service string, done map[string]bool) *types.Task {
	if t := firstExit(tasks, []string{service}, done); t != nil {
		return t
	}
	var last *types.Task
	for _, t := range tasks {
		if t.Service != service || done[t.ID] || t.ExitCode == nil {
			continue
		}
		if last == nil || newer(t, last) {
			last = t
		}
	}
	return last
}
