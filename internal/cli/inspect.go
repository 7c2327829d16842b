package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

func newInspectCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect SERVICE",
		Short: "Show a service: its version, verdict, current deployment and replicas",
		Long: `Show a service of the app: its spec version, the controller's verdict on it,
its current deployment (state, progress and why it stopped short) and its
replicas. For a failed service, the failing task's last exit code, health
check output and log lines. --json prints the service, its deployments and
its current tasks.`,
		Example: "  berth inspect web\n  berth inspect -p shop api --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inspect(cmd.Context(), args[0])
		},
	}
}

// serviceInspection is `inspect --json`.
type serviceInspection struct {
	Service     *types.Service    `json:"service"`
	Deployments []*api.Deployment `json:"deployments"`
	Tasks       []*types.Task     `json:"tasks"`
}

func (e *env) inspect(ctx context.Context, service string) error {
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
	svc := app.Service(service)
	if svc == nil {
		return fmt.Errorf("app %s has no service %s; see berth ps", name, service)
	}
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
	var deps []*api.Deployment
	for _, d := range all {
		if d.Service == service {
			deps = append(deps, d)
		}
	}
	if e.global.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if deps == nil {
			deps = []*api.Deployment{}
		}
		if tasks == nil {
			tasks = []*types.Task{}
		}
		return enc.Encode(serviceInspection{Service: svc, Deployments: deps, Tasks: tasks})
	}
	e.printInspection(ctx, c, app, svc, deps, tasks)
	return nil
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
