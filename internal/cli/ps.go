package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
)

type psOptions struct {
	all      bool
	quiet    bool
	services bool
	status   []string
	filters  []string
	format   string
}

// composeStates are the words `docker compose ps --status` takes.
var composeStates = []string{"paused", "restarting", "removing", "running", "dead", "created", "exited"}

func newPsCommand(e *env) *cobra.Command {
	var o psOptions
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the app's tasks",
		Long: `List the app's tasks: one row per replica, with its name (PROJECT-SERVICE-N,
as Compose names containers), node, state, health, published ports, restarts
and age. Only current tasks are shown (those still running or about to, and
the latest of each replica); -a shows every task the manager remembers.
Below the table, replicas with named volumes are listed with the node that
holds their data (see berth service unpin).

As docker compose ps: -q prints task IDs, --services service names,
--status keeps tasks in a Compose state (created, running, restarting,
removing, exited, dead, paused), --format json prints one JSON object a
line and --format '{{.Name}}' a Go template per task. -o json|yaml (or
--json) prints the tasks as one document.`,
		Example: "  berth ps\n  berth ps -a\n  berth ps -q --status exited\n  berth ps --format '{{.Name}} {{.State}}'\n  berth ps -o json -p hello",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.ps(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "show old tasks too (finished, replaced)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only task IDs")
	f.BoolVar(&o.services, "services", false, "print only the services' names, one a line")
	f.StringArrayVar(&o.status, "status", nil, "keep tasks in this Compose state (repeatable): "+strings.Join(composeStates, ", "))
	f.StringArrayVar(&o.filters, "filter", nil, "keep tasks whose property matches, as docker compose ps: status=STATE (repeatable)")
	f.StringVar(&o.format, "format", "", "table, json (one object a line) or a Go template such as '{{.Name}}'")
	return cmd
}

func (e *env) ps(ctx context.Context, o psOptions) error {
	kind, err := parseFormat(o.format)
	if err != nil {
		return err
	}
	if err := e.formatAndOutput(o.format); err != nil {
		return err
	}
	for _, f := range o.filters {
		v, ok := strings.CutPrefix(f, "status=")
		if !ok {
			return fmt.Errorf("--filter takes status=STATE, as docker compose ps, not %q", f)
		}
		o.status = append(o.status, v)
	}
	for _, s := range o.status {
		if !slices.Contains(composeStates, s) {
			return fmt.Errorf("--status takes one of %s, not %q", strings.Join(composeStates, ", "), s)
		}
	}
	name, err := e.appName(ctx)
	if err != nil {
		return err
	}
	c := e.client()
	app, err := c.GetApp(ctx, name)
	if errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("app %s is not deployed; deploy it with berth up", name)
	}
	if err != nil {
		return err
	}
	tasks, _, err := c.ListTasks(ctx, api.TaskQuery{App: name})
	if err != nil {
		return err
	}
	if !o.all {
		tasks = currentTasks(tasks)
	}
	if len(o.status) > 0 {
		tasks = slices.DeleteFunc(tasks, func(t *types.Task) bool { return !slices.Contains(o.status, composeState(t)) })
	}
	sortTasks(tasks)
	switch {
	case o.quiet:
		for _, t := range tasks {
			fmt.Fprintln(e.stdout, t.ID)
		}
		return nil
	case o.services:
		var names []string
		for _, t := range tasks {
			name := t.Service
			if svc := app.Service(name); svc != nil && svc.IsOneOff() {
				name = svc.OneOff.Of // a one-off's service, as Compose lists a run container's
			}
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
		for _, n := range names {
			fmt.Fprintln(e.stdout, n)
		}
		return nil
	}
	nodes, err := c.ListNodes(ctx)
	if err != nil {
		return err
	}
	names := nodeNames(nodes)
	switch {
	case e.structured():
		return e.render(taskSummaries(app, tasks, names, e.now()))
	case kind == formatJSON:
		return writeJSONLines(e.stdout, taskSummaries(app, tasks, names, e.now()))
	case kind == formatTemplate:
		return writeTemplate(e.stdout, o.format, taskSummaries(app, tasks, names, e.now()))
	}
	pins, err := appPins(ctx, c, name) // pins.go
	if err != nil {
		return err
	}
	if err := writeTaskTable(e.stdout, app, tasks, names, e.now()); err != nil {
		return err
	}
	return writePinTable(e.stdout, pins, names)
}

func nodeNames(nodes []*types.Node) map[string]string {
	m := make(map[string]string, len(nodes))
	for _, n := range nodes {
		m[n.ID] = n.Name
	}
	return m
}

// taskSummaries are the tasks as scripts read them (api.TaskSummary).
func taskSummaries(app *types.App, tasks []*types.Task, nodes map[string]string, now time.Time) []api.TaskSummary {
	out := make([]api.TaskSummary, 0, len(tasks))
	for _, t := range tasks {
		out = append(out, taskSummary(app, t, nodes, now))
	}
	return out
}

func taskSummary(app *types.App, t *types.Task, nodes map[string]string, now time.Time) api.TaskSummary {
	svc := app.Service(t.Service)
	s := api.TaskSummary{
		ID: t.ID, Name: t.Name(), Project: t.App, Service: t.Service,
		State: composeState(t), Status: dockerStatus(t, now), Health: taskHealth(t),
		CreatedAt:  t.CreatedAt.UTC().Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: units.HumanDuration(max(now.Sub(t.CreatedAt), 0)) + " ago",
		Publishers: []api.PortPublisher{},
		Slot:       t.Slot, Version: t.ServiceVersion,
		TaskState: string(t.State), DesiredState: string(t.DesiredState),
		Restarts: t.Attempt, Error: taskError(t), Detail: taskState(t),
	}
	if t.NodeID != "" {
		s.Node = nodeName(t.NodeID, nodes)
	}
	if t.ExitCode != nil {
		s.ExitCode = *t.ExitCode
	}
	if svc != nil {
		s.Image = svc.Image
		s.Command = strings.Join(append(slices.Clone(svc.Entrypoint), svc.Command...), " ")
		s.Ports = servicePorts(svc)
		for _, p := range svc.Ports {
			pub := api.PortPublisher{TargetPort: int(p.Target), PublishedPort: int(p.Published), Protocol: cmp.Or(p.Protocol, "tcp")}
			if p.Published != 0 {
				pub.URL = cmp.Or(p.HostIP, "0.0.0.0")
			}
			s.Publishers = append(s.Publishers, pub)
		}
	}
	return s
}

// composeState is the word docker compose ps would show for the task's
// container: created (not running yet), restarting (being replaced after
// a crash), running, removing (being stopped), exited, dead (its node was
// lost).
func composeState(t *types.Task) string {
	switch {
	case t.State == types.TaskLost:
		return "dead"
	case t.State.Terminal():
		return "exited"
	case t.DesiredState == types.DesiredShutdown:
		return "removing"
	case t.State == types.TaskRunning && t.Paused:
		return "paused"
	case t.State == types.TaskRunning:
		return "running"
	case t.Attempt > 0:
		return "restarting"
	}
	return "created"
}

// dockerStatus is docker ps's STATUS sentence for the task: "Up 2 minutes
// (healthy)", "Exited (1) 3 minutes ago", "Created".
func dockerStatus(t *types.Task, now time.Time) string {
	since := func(at time.Time) string {
		if at.IsZero() {
			at = t.CreatedAt
		}
		return units.HumanDuration(max(now.Sub(at), 0))
	}
	switch composeState(t) {
	case "running":
		s := "Up " + since(t.StartedAt)
		if h := taskHealth(t); h != "" {
			s += " (" + h + ")"
		}
		return s
	case "exited":
		code := 0
		if t.ExitCode != nil {
			code = *t.ExitCode
		}
		return fmt.Sprintf("Exited (%d) %s ago", code, since(t.FinishedAt))
	case "paused":
		return "Up " + since(t.StartedAt) + " (Paused)"
	case "dead":
		return "Dead"
	case "removing":
		return "Removing"
	case "restarting":
		return fmt.Sprintf("Restarting (%d restarts)", t.Attempt)
	}
	return "Created"
}
