package cli

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// Compose v2's verbs that act once on running tasks (issue 19): kill,
// pause, unpause and top. The manager passes each to the agent of the
// task's node; nothing is kept in Raft (agent/control.go says why).

func newKillCommand(e *env) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [SERVICE...]",
		Short: "Send a signal to the running tasks of services",
		Long: `Send a signal (default SIGKILL) once to each running task of services (every
service without arguments), on whatever node it runs, as docker compose kill
does. The task's exit is then handled as any other: its restart policy
decides whether it is replaced.`,
		Example: "  berth kill\n  berth kill -s SIGHUP web",
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.eachRunning(cmd.Context(), args, "kill", "Killed", func(ctx context.Context, c *api.Client, t *types.Task) error {
				return c.KillTask(ctx, t.ID, signal)
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "SIGKILL", "the signal to send: a name such as SIGTERM or HUP, or a number")
	return cmd
}

func newPauseCommand(e *env, unpause bool) *cobra.Command {
	verb, done, short := "pause", "Paused", "Pause the running tasks of services"
	call := (*api.Client).PauseTask
	if unpause {
		verb, done, short = "unpause", "Unpaused", "Unpause the paused tasks of services"
		call = (*api.Client).UnpauseTask
	}
	return &cobra.Command{
		Use:   verb + " [SERVICE...]",
		Short: short,
		Long: short + ` (every service without arguments), on whatever node they
run, as docker compose ` + verb + ` does: the docker driver uses the engine's
pause (the cgroup freezer), the exec driver SIGSTOP and SIGCONT of the task's
process group.`,
		Example: "  berth " + verb + "\n  berth " + verb + " web",
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.eachRunning(cmd.Context(), args, verb, done, func(ctx context.Context, c *api.Client, t *types.Task) error {
				return call(c, ctx, t.ID)
			})
		},
	}
}

// eachRunning calls fn for every running task of the services, printing
// each done; it tries them all, and fails naming those that failed.
func (e *env) eachRunning(ctx context.Context, services []string, verb, done string, fn func(context.Context, *api.Client, *types.Task) error) error {
	c := e.client()
	tasks, err := e.runningTasks(ctx, c, services)
	if err != nil {
		return err
	}
	if len(tasks) == 0 {
		fmt.Fprintf(e.stdout, "no container to %s\n", verb)
		return nil
	}
	var errs []error
	for _, t := range tasks {
		if err := fn(ctx, c, t); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(e.stdout, "Container %s  %s\n", t.Name(), done)
	}
	return taskErrors(errs, len(tasks), verb)
}

// taskErrors is one error for the tasks a verb failed on, or nil.
func taskErrors(errs []error, total int, verb string) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return fmt.Errorf("%d of %d tasks failed to %s; the first: %w", len(errs), total, verb, errs[0])
}

// runningTasks are the services' running tasks, by name; no services
// means every service of the app.
func (e *env) runningTasks(ctx context.Context, c *api.Client, services []string) ([]*types.Task, error) {
	app, err := e.storedAppWith(ctx, services)
	if err != nil {
		return nil, err
	}
	all, _, err := c.ListTasks(ctx, api.TaskQuery{App: app.Name})
	if err != nil {
		return nil, fmt.Errorf("list the tasks of app %s: %w", app.Name, err)
	}
	var out []*types.Task
	for _, t := range all {
		if t.State == types.TaskRunning && t.DesiredState == types.DesiredRunning && (len(services) == 0 || slices.Contains(services, t.Service)) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *types.Task) int { return cmp.Compare(a.Name(), b.Name()) })
	return out, nil
}

func newTopCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "top [SERVICE...]",
		Short: "Show the processes of the running tasks of services",
		Long: `Show the processes of each running task of services (every service without
arguments), on whatever node it runs, as docker compose top does: for the
docker driver the engine's top (ps -ef in the container), for the exec driver
the task's process group as /proc shows it.`,
		Example: "  berth top\n  berth top web",
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.top(cmd.Context(), args)
		},
	}
}

func (e *env) top(ctx context.Context, services []string) error {
	c := e.client()
	tasks, err := e.runningTasks(ctx, c, services)
	if err != nil {
		return err
	}
	var errs []error
	for i, t := range tasks {
		p, err := c.TaskTop(ctx, t.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		fmt.Fprintln(e.stdout, t.Name())
		w := tabwriter.NewWriter(e.stdout, 0, 4, 3, ' ', 0)
		fmt.Fprintln(w, strings.Join(p.Titles, "\t"))
		for _, row := range p.Processes {
			fmt.Fprintln(w, strings.Join(row, "\t"))
		}
		_ = w.Flush()
	}
	return taskErrors(errs, len(tasks), "list their processes")
}
