package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// Compose v2's per-service verbs that change desired state (issue 19):
// stop, start, restart and rm. The manager keeps what they ask in Raft
// (types.Lifecycle), so it holds through restarts and failovers; these
// commands ask, then follow until the cluster did it.

// defaultStartWait is how long start and restart follow the services
// unless --wait-timeout says otherwise.
const defaultStartWait = 5 * time.Minute

type stopOptions struct {
	timeout int
	set     bool // -t given
}

func (o stopOptions) request(services []string) api.LifecycleRequest {
	req := api.LifecycleRequest{Services: services}
	if o.set {
		t := o.timeout
		req.TimeoutSeconds = &t
	}
	return req
}

func addTimeoutFlag(cmd *cobra.Command, o *stopOptions) {
	cmd.Flags().IntVarP(&o.timeout, "timeout", "t", 0, "seconds to wait for a task to stop before it is killed (default: the service's stop_grace_period)")
}

func newStopCommand(e *env) *cobra.Command {
	var o stopOptions
	cmd := &cobra.Command{
		Use:   "stop [SERVICE...]",
		Short: "Stop services; they stay stopped until start, restart or up",
		Long: `Stop the tasks of services (every service of the app without arguments), as
docker compose stop does. The stop is kept by the cluster: the services stay
stopped through agent restarts, node failures and manager failovers, until
berth start, berth restart or berth up.`,
		Example: "  berth stop\n  berth stop web -t 2",
		RunE: func(cmd *cobra.Command, args []string) error {
			o.set = cmd.Flags().Changed("timeout")
			return e.stop(cmd.Context(), args, o)
		},
	}
	addTimeoutFlag(cmd, &o)
	return cmd
}

func (e *env) stop(ctx context.Context, services []string, o stopOptions) error {
	name, err := e.appName(ctx)
	if err != nil {
		return err
	}
	c := e.client()
	res, err := c.StopServices(ctx, name, o.request(services))
	if err != nil {
		return fmt.Errorf("stop the services of app %s: %w", name, err)
	}
	return e.waitStopped(ctx, c, name, res.Services)
}

// stopWait bounds how long stop follows its tasks: past the longest grace
// and drain a task may take, something else is wrong (a node that does not
// answer), and ps says what.
const stopWait = 2 * time.Minute

// waitStopped follows the services' tasks until none is left running,
// printing each as it stops.
func (e *env) waitStopped(ctx context.Context, c *api.Client, app string, services []string) error {
	ctx, cancel := context.WithTimeout(ctx, stopWait)
	defer cancel()
	var index uint64
	// A task is named once it stopped: one seen running here, or one
	// that finished since the stop was asked (before the first look).
	since := e.now().Add(-time.Second)
	seen, printed := map[string]bool{}, map[string]bool{}
	for {
		tasks, meta, err := c.ListTasks(ctx, api.TaskQuery{App: app, QueryOptions: api.QueryOptions{Index: index, Wait: blockingWait}})
		if ctx.Err() != nil {
			return fmt.Errorf("the tasks of %s are still stopping after %s; berth ps shows them", strings.Join(services, ", "), stopWait)
		}
		if err != nil {
			return fmt.Errorf("follow the tasks of app %s: %w", app, err)
		}
		index = meta.Index
		left := 0
		for _, t := range tasks {
			if !slices.Contains(services, t.Service) {
				continue
			}
			switch {
			case !t.State.Terminal():
				left++
				seen[t.ID] = true
			case !printed[t.ID] && (seen[t.ID] || t.FinishedAt.After(since)):
				printed[t.ID] = true
				fmt.Fprintf(e.stdout, "Container %s  Stopped\n", t.Name())
			}
		}
		if left == 0 {
			return nil
		}
	}
}

type startOptions struct {
	waitTimeout int
	wait        bool
}

func addWaitFlags(cmd *cobra.Command, o *startOptions) {
	cmd.Flags().BoolVar(&o.wait, "wait", true, "wait for the services to run (the default; accepted as Compose's)")
	cmd.Flags().IntVar(&o.waitTimeout, "wait-timeout", int(defaultStartWait/time.Second), "seconds to wait for the services to run")
}

func newStartCommand(e *env) *cobra.Command {
	var o startOptions
	cmd := &cobra.Command{
		Use:   "start [SERVICE...]",
		Short: "Start services berth stop stopped",
		Long: `Start services berth stop stopped (every service of the app without
arguments), as docker compose start does, and wait until they run.`,
		Example: "  berth start\n  berth start web",
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.startServices(cmd.Context(), args, o, false, stopOptions{})
		},
	}
	addWaitFlags(cmd, &o)
	return cmd
}

func newRestartCommand(e *env) *cobra.Command {
	var o startOptions
	var so stopOptions
	cmd := &cobra.Command{
		Use:   "restart [SERVICE...]",
		Short: "Replace the tasks of services now",
		Long: `Restart services (every service of the app without arguments), as docker
compose restart does, and wait until they run. On a cluster a restart replaces
each task: a new task is placed as any other (on the same node or another),
and the old one leaves DNS and the mesh, drains its delay and stops with the
stop grace. A stopped service is started.`,
		Example: "  berth restart\n  berth restart web -t 5",
		RunE: func(cmd *cobra.Command, args []string) error {
			so.set = cmd.Flags().Changed("timeout")
			return e.startServices(cmd.Context(), args, o, true, so)
		},
	}
	addTimeoutFlag(cmd, &so)
	addWaitFlags(cmd, &o)
	return cmd
}

// startServices is start (or, with restart, restart): ask, then follow
// the services as up does.
func (e *env) startServices(ctx context.Context, services []string, o startOptions, restart bool, so stopOptions) error {
	if o.waitTimeout <= 0 {
		return fmt.Errorf("invalid --wait-timeout %d: give a number of seconds above 0", o.waitTimeout)
	}
	name, err := e.appName(ctx)
	if err != nil {
		return err
	}
	c := e.client()
	call, verb := c.StartServices, "start"
	if restart {
		call, verb = c.RestartServices, "restart"
	}
	res, err := call(ctx, name, so.request(services))
	if err != nil {
		return fmt.Errorf("%s the services of app %s: %w", verb, name, err)
	}
	if !o.wait {
		return nil
	}
	app, err := c.GetApp(ctx, name)
	if err != nil {
		return fmt.Errorf("read app %s: %w", name, err)
	}
	app.Services = slices.DeleteFunc(app.Services, func(s *types.Service) bool { return !slices.Contains(res.Services, s.Name) })
	return e.followDeploy(ctx, c, app, time.Duration(o.waitTimeout)*time.Second)
}

type rmOptions struct{ force, stop bool }

// removable reports whether berth rm removes t, as the manager does
// (state.RemoveStoppedTasks): a task told to stop that has stopped, or a
// one-off's that ended; of the services named (a one-off is named by its
// own name or its service's), or of any with none named.
func removable(app *types.App, t *types.Task, services []string) bool {
	if !t.State.Terminal() {
		return false
	}
	svc := app.Service(t.Service)
	oneOff := svc != nil && svc.IsOneOff()
	named := len(services) == 0 || slices.Contains(services, t.Service) || (oneOff && slices.Contains(services, svc.OneOff.Of))
	return named && (t.DesiredState == types.DesiredShutdown || oneOff)
}

func newRmCommand(e *env) *cobra.Command {
	var o rmOptions
	cmd := &cobra.Command{
		Use:   "rm [SERVICE...]",
		Short: "Remove the stopped tasks of services",
		Long: `Remove the tasks of services that were stopped (berth stop, or replaced),
with their containers on every node, as docker compose rm does: it asks
first unless -f, and -s stops the services first. A service's finished
one-shot task that is still wanted is kept: removing it would run it again.
One-offs of berth run that exited go too, task and record (SERVICE names
its one-offs as well).`,
		Example: "  berth rm -f\n  berth rm -s -f worker",
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.rm(cmd.Context(), args, o, e.stdin)
		},
	}
	// -f means --force here, as in docker compose rm; the Compose file is
	// --file, or -f before the verb, as for logs (see newLogsCommand).
	cmd.Flags().StringArrayVar(&e.global.files, "file", nil, "Compose file (repeatable)")
	cmd.Flags().BoolVarP(&o.force, "force", "f", false, "do not ask before removing")
	cmd.Flags().BoolVarP(&o.stop, "stop", "s", false, "stop the services first")
	return cmd
}

func (e *env) rm(ctx context.Context, services []string, o rmOptions, in io.Reader) error {
	if o.stop {
		if err := e.stop(ctx, services, stopOptions{}); err != nil {
			return err
		}
	}
	app, err := e.storedAppWith(ctx, services)
	if err != nil {
		return err
	}
	c := e.client()
	tasks, _, err := c.ListTasks(ctx, api.TaskQuery{App: app.Name})
	if err != nil {
		return fmt.Errorf("list the tasks of app %s: %w", app.Name, err)
	}
	var names []string
	for _, t := range tasks {
		if removable(app, t, services) {
			names = append(names, t.Name())
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(e.stdout, "No stopped containers")
		return nil
	}
	slices.Sort(names)
	if !o.force {
		fmt.Fprintf(e.stdout, "Going to remove %s\n? Are you sure? (y/N) ", strings.Join(slices.Compact(names), ", "))
		line, _ := bufio.NewReader(in).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(e.stdout)
			return nil
		}
	}
	res, err := c.RemoveStopped(ctx, app.Name, api.LifecycleRequest{Services: services})
	if err != nil {
		return fmt.Errorf("remove the stopped tasks of app %s: %w", app.Name, err)
	}
	for _, n := range res.Removed {
		fmt.Fprintf(e.stdout, "Container %s  Removed\n", n)
	}
	return nil
}
