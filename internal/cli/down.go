package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/spf13/cobra"
)

type downOptions struct {
	volumes bool
	timeout time.Duration
}

// downPoll bounds each wait while an app is being removed: the last step
// (agents removing networks) changes no task, so a blocking query on tasks
// alone would not notice it.
const downPoll = 2 * time.Second

func newDownCommand(e *env) *cobra.Command {
	var o downOptions
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the app: its tasks and networks (and volumes with -v)",
		Long: `Remove the app, as docker compose down does: every task stops and its
container goes, then the app's networks. Named volumes stay unless -v.

As with up, when no --addr or BERTH_ADDR is given and no manager answers at
the default address, down starts the local cluster first: after berth
server stop the app's containers keep running, and the cluster removes them.`,
		Example: "  berth down\n  berth down -v\n  berth down -p hello",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.down(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVarP(&o.volumes, "volumes", "v", false, "also remove the app's named volumes")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the removal")
	return cmd
}

func (e *env) down(ctx context.Context, o downOptions) error {
	name, err := e.appName(ctx)
	if err != nil {
		return err
	}
	// As up does: on the local default, a stopped local cluster is
	// started, since its apps' containers kept running (berth server stop
	// leaves them) and only the cluster can remove them.
	c, err := e.ensureManager(ctx)
	if err != nil {
		return err
	}
	err = c.DeleteApp(ctx, name, o.volumes)
	if errors.Is(err, api.ErrNotFound) {
		fmt.Fprintf(e.stdout, "App %s is not deployed; nothing to remove\n", name)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Removing app %s\n", name)
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := e.waitRemoved(ctx, c, name); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("app %s was not removed within %s; run berth ps -p %s to see what is left", name, o.timeout, name)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "Removed app %s\n", name)
	return nil
}

// waitRemoved waits until the manager no longer knows the app, printing how
// many tasks are still stopping whenever that number changes.
func (e *env) waitRemoved(ctx context.Context, c *api.Client, name string) error {
	var index uint64
	lastLeft := 0
	for {
		_, err := c.GetApp(ctx, name)
		if errors.Is(err, api.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		tasks, meta, err := c.ListTasks(ctx, api.TaskQuery{App: name, QueryOptions: api.QueryOptions{Index: index, Wait: downPoll}})
		if err != nil {
			return err
		}
		left := 0
		for _, t := range tasks {
			if !t.State.Terminal() {
				left++
			}
		}
		if left != lastLeft && left > 0 {
			fmt.Fprintf(e.stdout, "  %s still stopping\n", countOf(left, "task", "tasks"))
		}
		lastLeft = left
		if err := pace(ctx, &index, meta.Index); err != nil {
			return err
		}
	}
}
