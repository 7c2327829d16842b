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
	// waitTimeout bounds the wait for the removal.
	waitTimeout time.Duration
	// stopGrace is -t in seconds: how long each task has to stop before it
	// is killed (-1: its service's stop_grace_period).
	stopGrace     int    // set through graceSeconds
	rmi           string // "", "all" or "local"
	removeOrphans bool
}

// downPoll bounds each wait while an app is being removed: the last step
// (agents removing networks) changes no task, so a blocking query on tasks
// alone would not notice it.
const downPoll = 2 * time.Second

func newDownCommand(e *env) *cobra.Command {
	o := downOptions{waitTimeout: 5 * time.Minute, stopGrace: -1}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the app: its tasks and networks (and volumes with -v)",
		Long: `Remove the app, as docker compose down does: every task stops and its
container goes, then the app's networks. Named volumes stay unless -v.

As with up, when no --addr or BERTH_ADDR is given and no manager answers at
the default address, down starts the local cluster first: after berth
server stop the app's containers keep running, and the cluster removes them.

The cluster holds an app as one whole, so down removes every service it
runs for the app, orphans too (services the Compose file no longer has):
--remove-orphans is accepted, as docker compose's, and changes nothing.`,
		Example: "  berth down\n  berth down -v\n  berth down -p hello\n  berth down --rmi local -t 30\n  berth down --wait-timeout 10m",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case o.rmi != "" && o.rmi != "all" && o.rmi != "local":
				return fmt.Errorf("--rmi %q: write all (every image of the app) or local (only images built without an image: name)", o.rmi)
			case o.waitTimeout <= 0:
				return errors.New("--wait-timeout must be more than 0, e.g. 300 or 5m")
			}
			return e.down(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.volumes, "volumes", "v", false, "also remove the app's named volumes")
	f.Var((*secondsOrDuration)(&o.waitTimeout), "wait-timeout", "how long to wait for the removal, as SECONDS or a duration (5m)")
	f.VarP((*graceSeconds)(&o.stopGrace), "timeout", "t", "seconds each container has to stop before it is killed (default: its stop_grace_period)")
	f.StringVar(&o.rmi, "rmi", "", "also remove images from this machine's engine: all, or local (those built without an image: name)")
	f.BoolVar(&o.removeOrphans, "remove-orphans", false, "accepted for docker compose: down always removes the whole app, orphans included")
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
	stored, err := deployedApp(ctx, c, name)
	if err != nil {
		return err
	}
	if stored == nil {
		fmt.Fprintf(e.stdout, "App %s is not deployed; nothing to remove\n", name)
		return nil
	}
	err = c.DeleteAppWith(ctx, name, api.DeleteOptions{Volumes: o.volumes, StopGrace: graceOf(o.stopGrace)})
	if errors.Is(err, api.ErrNotFound) {
		fmt.Fprintf(e.stdout, "App %s is not deployed; nothing to remove\n", name)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Removing app %s\n", name)
	wctx, cancel := context.WithTimeout(ctx, o.waitTimeout)
	defer cancel()
	if err := e.waitRemoved(wctx, c, name); err != nil {
		if errors.Is(wctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("app %s was not removed within %s; run berth ps -p %s to see what is left", name, o.waitTimeout, name)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "Removed app %s\n", name)
	if o.rmi != "" {
		return e.removeImages(ctx, stored, o.rmi) // downrmi.go
	}
	return nil
}

// graceOf is a -t flag's stop grace: 0 for none given (-1), since the
// manager takes a grace of 0 as none. -t 0 (kill at once) is sent as the
// shortest grace there is, which the drivers round up to their least.
func graceOf(seconds int) time.Duration {
	switch {
	case seconds < 0:
		return 0
	case seconds == 0:
		return time.Nanosecond
	}
	return time.Duration(seconds) * time.Second
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
