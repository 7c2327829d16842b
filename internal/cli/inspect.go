package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/compose"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

func newInspectCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect SERVICE|TASK",
		Short: "Show a service or a task: its version, verdict, deployment and replicas",
		Long: `Show a service of the app: its spec version, the controller's verdict on it,
its current deployment (state, progress and why it stopped short) and its
replicas. For a failed service, the failing task's last exit code, health
check output and log lines.

Given a task instead (its name, PROJECT-SERVICE-N as berth ps shows it, or
its ID), show the task: its node, state, exit code, addresses and last
health check output.

-o json|yaml (or --json) prints the service (its spec as berth config
--berth writes it, its deployments and current tasks) or the task as one
document.`,
		Example: "  berth inspect web\n  berth inspect hello-web-1\n  berth inspect -p shop api -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inspect(cmd.Context(), args[0])
		},
	}
}

func (e *env) inspect(ctx context.Context, ref string) error {
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
	svc := app.Service(ref)
	if svc == nil {
		return e.inspectTask(ctx, c, app, ref)
	}
	service := svc.Name
	tasks, _, err := c.ListTasks(ctx, api.TaskQuery{App: name, Service: service})
	if err != nil {
		return err
	}
	tasks = currentTasks(tasks)
	sortTasks(tasks)
	all, err := appDeployments(ctx, c, name)
	if err != nil {
		return err
	}
	deps := []*api.Deployment{}
	for _, d := range all {
		if d.Service == service {
			deps = append(deps, d)
		}
	}
	if e.structured() {
		nodes, err := c.ListNodes(ctx)
		if err != nil {
			return err
		}
		spec, err := compose.SpecJSON(svc)
		if err != nil {
			return fmt.Errorf("render service %s: %w", service, err)
		}
		return e.render(api.ServiceInspection{
			App: name, Service: spec, Verdict: verdict(svc), Deployments: api.SummarizeDeployments(deps),
			Tasks: taskSummaries(app, tasks, nodeNames(nodes), e.now()),
		})
	}
	e.printInspection(ctx, c, app, svc, deps, tasks)
	return nil
}

// verdict is the controller's judgement of the service's current version,
// in a line: "converged", "failed: replica 2 exited with code 1".
func verdict(svc *types.Service) string {
	st := svc.Status
	if st == nil || st.Version != svc.Version {
		return ""
	}
	if st.Reason != "" {
		return string(st.State) + ": " + st.Reason
	}
	return string(st.State)
}

// inspectTask shows one task of the app, found by name (as ps shows it) or
// ID (or an unambiguous ID prefix).
func (e *env) inspectTask(ctx context.Context, c *api.Client, app *types.App, ref string) error {
	tasks, _, err := c.ListTasks(ctx, api.TaskQuery{App: app.Name})
	if err != nil {
		return err
	}
	t, err := findTask(tasks, ref)
	if err != nil {
		return fmt.Errorf("app %s has no service %s, nor a task of that name or ID; see berth ps", app.Name, ref)
	}
	nodes, err := c.ListNodes(ctx)
	if err != nil {
		return err
	}
	sum := taskSummary(app, t, nodeNames(nodes), e.now())
	if e.structured() {
		in := api.TaskInspection{TaskSummary: sum, ContainerID: t.ContainerID, Addresses: t.Addresses, HealthOutput: t.HealthOutput,
			StartedAt: rfc3339(t.StartedAt), FinishedAt: rfc3339(t.FinishedAt)}
		if svc := app.Service(t.Service); svc != nil {
			if in.ServiceSpec, err = compose.SpecJSON(svc); err != nil {
				return fmt.Errorf("render service %s: %w", svc.Name, err)
			}
		}
		return e.render(in)
	}
	w := e.stdout
	fmt.Fprintf(w, "Task %s (%s) of service %s, version %d\n", sum.Name, t.ID, t.Service, t.ServiceVersion)
	fmt.Fprintf(w, "  node:        %s\n", dash(sum.Node))
	fmt.Fprintf(w, "  state:       %s (%s)\n", sum.Detail, sum.Status)
	fmt.Fprintf(w, "  desired:     %s\n", t.DesiredState)
	if sum.Ports != "" {
		fmt.Fprintf(w, "  ports:       %s\n", sum.Ports)
	}
	fmt.Fprintf(w, "  restarts:    %d\n", t.Attempt)
	for _, k := range slices.Sorted(maps.Keys(t.Addresses)) {
		fmt.Fprintf(w, "  address:     %s on %s\n", t.Addresses[k], k)
	}
	if t.ContainerID != "" {
		fmt.Fprintf(w, "  container:   %s\n", t.ContainerID)
	}
	if out := strings.TrimSpace(t.HealthOutput); out != "" {
		fmt.Fprintf(w, "  last health check output:\n%s\n", indentLines(out))
	}
	return nil
}

// findTask picks the task named ref (PROJECT-SERVICE-N, the newest when a
// replica has had several), or whose ID is or starts with ref.
func findTask(tasks []*types.Task, ref string) (*types.Task, error) {
	var byName, byPrefix []*types.Task
	for _, t := range tasks {
		switch {
		case t.ID == ref:
			return t, nil
		case t.Name() == ref:
			byName = append(byName, t)
		case strings.HasPrefix(t.ID, ref):
			byPrefix = append(byPrefix, t)
		}
	}
	if len(byName) > 0 {
		return slices.MaxFunc(byName, func(a, b *types.Task) int { return cmp.Compare(a.CreateIndex, b.CreateIndex) }), nil
	}
	if len(byPrefix) == 1 {
		return byPrefix[0], nil
	}
	return nil, api.ErrNotFound
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (e *env) printInspection(ctx context.Context, c *api.Client, app *types.App, svc *types.Service, deps []*api.Deployment, tasks []*types.Task) {
	w := e.stdout
	fmt.Fprintf(w, "Service %s of app %s, version %d\n", svc.Name, app.Name, svc.Version)
	image := cmp.Or(svc.Image, svc.Driver+": "+strings.Join(append(svc.Entrypoint, svc.Command...), " "))
	want := countOf(svc.Replicas, "replica", "replicas")
	if svc.Mode == types.ModeGlobal {
		want = "one per node"
	}
	fmt.Fprintf(w, "  spec:        %s, %s\n", image, want)
	if st := svc.Status; st != nil && st.Version == svc.Version {
		line := string(st.State)
		if st.Reason != "" {
			line += ": " + st.Reason
		}
		fmt.Fprintf(w, "  verdict:     %s\n", line)
	}
	for _, d := range deps {
		if d.ToVersion != svc.Version {
			continue
		}
		fmt.Fprintf(w, "  deployment:  %s %s, %s\n", versions(d), d.State, rolloutProgress(d))
		if d.Reason != "" {
			fmt.Fprintf(w, "               %s\n", reasonText(d))
		}
	}
	fmt.Fprintf(w, "  replicas:\n")
	for _, t := range tasks {
		line := fmt.Sprintf("    %s  version %d  %s", t.Name(), t.ServiceVersion, t.State)
		if t.Health != types.HealthNone {
			line += " (" + string(t.Health) + ")"
		}
		if t.ExitCode != nil {
			line += fmt.Sprintf("  exit code %d", *t.ExitCode)
		}
		if t.Attempt > 0 {
			line += "  " + countOf(t.Attempt, "restart", "restarts")
		}
		fmt.Fprintln(w, line)
	}
	st := svc.Status
	if st == nil || st.State != types.ServiceFailed || st.TaskID == "" {
		return
	}
	if st.ExitCode != nil {
		fmt.Fprintf(w, "  %s last exited with code %d\n", cmp.Or(st.TaskName, st.TaskID), *st.ExitCode)
	}
	if out := strings.TrimSpace(st.HealthOutput); out != "" {
		fmt.Fprintf(w, "  last health check output:\n%s\n", indentLines(out))
	}
	if lines, err := lastLogLines(ctx, c, st.TaskID, failureLogLines); err == nil && lines != "" {
		fmt.Fprintf(w, "  last log lines of %s:\n%s\n", cmp.Or(st.TaskName, st.TaskID), indentLines(lines))
	}
}
