package cli

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

func newWaitCommand(e *env) *cobra.Command {
	var downProject bool
	cmd := &cobra.Command{
		Use:   "wait SERVICE...",
		Short: "Block until the tasks of services stop, and exit with the last one's code",
		Long: `Block until the tasks the services have now stop, as docker compose wait does
for their containers: each is printed with its exit code as it stops, and
berth exits with the exit code of the last to stop (docker compose wait's
code does the same). A task that has stopped already counts at once. A task
the restart policy replaces counts when it stops, not its replacement. With
--down-project, the app is removed (berth down) once they have all stopped.`,
		Example: "  berth wait migrate\n  berth wait tests --down-project",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.wait(cmd.Context(), args, downProject)
		},
	}
	cmd.Flags().BoolVar(&downProject, "down-project", false, "remove the app (berth down) once the tasks have stopped")
	return cmd
}

func (e *env) wait(ctx context.Context, services []string, downProject bool) error {
	app, err := e.storedAppWith(ctx, services)
	if err != nil {
		return err
	}
	c := e.client()
	tasks, meta, err := c.ListTasks(ctx, api.TaskQuery{App: app.Name})
	if err != nil {
		return fmt.Errorf("list the tasks of app %s: %w", app.Name, err)
	}
	waiting := map[string]bool{}
	for _, t := range currentTasks(tasks) { // the tasks ps shows
		if slices.Contains(services, t.Service) {
			waiting[t.ID] = true
		}
	}
	if len(waiting) == 0 {
		return fmt.Errorf("services %v of app %s have no task to wait for; berth ps -a shows what ran", services, app.Name)
	}
	last := 0
	for {
		for _, t := range tasks {
			if !waiting[t.ID] || !t.State.Terminal() {
				continue
			}
			delete(waiting, t.ID)
			last = exitOf(t)
			fmt.Fprintf(e.stdout, "%s exited with code %d\n", t.Name(), last)
		}
		if len(waiting) == 0 {
			break
		}
		tasks, meta, err = c.ListTasks(ctx, api.TaskQuery{App: app.Name, QueryOptions: api.QueryOptions{Index: meta.Index, Wait: blockingWait}})
		if err != nil {
			return fmt.Errorf("follow the tasks of app %s: %w", app.Name, err)
		}
		if !slices.ContainsFunc(tasks, func(t *types.Task) bool { return waiting[t.ID] }) {
			// Gone from the cluster (berth down, rm): nothing to say of them.
			return fmt.Errorf("the tasks of %v were removed while berth waited for them", services)
		}
	}
	if downProject {
		if err := c.DeleteApp(ctx, app.Name, false); err != nil {
			return fmt.Errorf("remove app %s after its tasks stopped: %w", app.Name, err)
		}
		fmt.Fprintf(e.stdout, "Removing app %s\n", app.Name)
	}
	if last != 0 {
		return &exitCodeError{code: last}
	}
	return nil
}

// exitOf is a stopped task's exit code; one that never ran (rejected,
// lost with its node) has none, and counts as 1, a failure.
func exitOf(t *types.Task) int {
	if t.ExitCode != nil {
		return *t.ExitCode
	}
	if t.State == types.TaskComplete || t.State == types.TaskShutdown {
		return 0
	}
	return 1
}
