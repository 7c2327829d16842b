package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

type upOptions struct {
	detach  bool
	wait    bool
	noBuild bool
	build   bool
	dryRun  bool
	// waitTimeout bounds the wait for the deploy (and the push of images).
	waitTimeout time.Duration
	// stopGrace is -t in seconds: the stop grace of the tasks this up
	// replaces (-1: each service's stop_grace_period).
	stopGrace     int // set through graceSeconds
	noDeps        bool
	forceRecreate bool
	noRecreate    bool
	removeOrphans bool
	scale         []string // SERVICE=N
	abortOnExit   bool
	exitCodeFrom  string
	services      []string // the arguments: SERVICE...
}

func newUpCommand(e *env) *cobra.Command {
	o := upOptions{waitTimeout: 5 * time.Minute, stopGrace: -1}
	cmd := &cobra.Command{
		Use:   "up [SERVICE...]",
		Short: "Deploy the Compose app and wait until it runs",
		Long: `Deploy the Compose app: build images that need building, push them (and
images only this machine's engine has) to the cluster's registry, submit the
app, and follow the deploy until every replica runs (and is healthy, where
the service has a healthcheck) or a service cannot converge.

With SERVICE arguments only those services and their dependencies are
deployed (--no-deps: not the dependencies); the app's other services are
left as they run, as are services of profiles not enabled this time.
Services the cluster runs for the app that the Compose file no longer has
(orphans) are kept, with a warning, unless --remove-orphans.

With --abort-on-container-exit (or --exit-code-from), up stays attached as
docker compose up does: the replicas' output streams until the first
container exits; then the services are stopped, as berth stop stops them,
and up exits with that container's code (or the code of the service
--exit-code-from names).

Ctrl-C while up follows the deploy leaves the deploy going on in the
cluster (follow it with berth deployments or berth ps); during a build it
cancels the build, and nothing is submitted.

When no --addr or BERTH_ADDR is given and no manager answers at the default
address, up starts a local one-node cluster first.`,
		Example: "  berth up\n  berth up -f compose.yaml -f compose.prod.yaml -d\n  berth up web --no-deps --force-recreate\n" +
			"  berth up --scale worker=3 --remove-orphans\n  berth up --build --wait-timeout 10m\n" +
			"  berth up --abort-on-container-exit --exit-code-from tests\n  berth up --dry-run",
		RunE: func(cmd *cobra.Command, args []string) error {
			o.services = args
			if err := o.check(); err != nil {
				return err
			}
			return e.up(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.detach, "detach", "d", false, "return once the app is submitted, without waiting")
	f.BoolVar(&o.wait, "wait", false, "wait until the services run (and are healthy): berth's default, also with -d")
	f.Var((*secondsOrDuration)(&o.waitTimeout), "wait-timeout", "how long to wait for the deploy, as SECONDS or a duration (5m)")
	f.VarP((*graceSeconds)(&o.stopGrace), "timeout", "t", "seconds each replaced container has to stop before it is killed (default: its stop_grace_period)")
	f.BoolVar(&o.noBuild, "no-build", false, "do not build images, even missing ones")
	f.BoolVar(&o.build, "build", false, "build images even when they exist")
	f.BoolVar(&o.dryRun, "dry-run", false, "show what up would change (services, fields, tasks) and change nothing (--json for a script)")
	f.BoolVar(&o.noDeps, "no-deps", false, "deploy the named services only, not the services they depend on")
	f.BoolVar(&o.forceRecreate, "force-recreate", false, "replace the tasks even if the service did not change (a new version, deployed as any)")
	f.BoolVar(&o.noRecreate, "no-recreate", false, "leave the tasks of services that exist as they run, even if their spec changed")
	f.BoolVar(&o.removeOrphans, "remove-orphans", false, "remove the app's services the Compose file no longer has")
	f.StringArrayVar(&o.scale, "scale", nil, "run N replicas of SERVICE (SERVICE=N, repeatable), instead of the file's count, for this up")
	f.BoolVar(&o.abortOnExit, "abort-on-container-exit", false, "stream the output; when a container exits, stop the services (as berth stop) and exit with its code")
	f.StringVar(&o.exitCodeFrom, "exit-code-from", "", "exit with the code of SERVICE's container (implies --abort-on-container-exit)")
	return cmd
}

// check refuses the flags that contradict each other, as docker compose does.
func (o *upOptions) check() error {
	if o.exitCodeFrom != "" {
		o.abortOnExit = true
	}
	switch {
	case o.build && o.noBuild:
		return errors.New("--build and --no-build cannot be used together; pick one")
	case o.forceRecreate && o.noRecreate:
		return errors.New("--force-recreate and --no-recreate cannot be used together; pick one")
	case o.abortOnExit && (o.detach || o.wait):
		return errors.New("--abort-on-container-exit (and --exit-code-from) stays attached; drop -d and --wait")
	case o.waitTimeout <= 0:
		return errors.New("--wait-timeout must be more than 0, e.g. 300 or 5m")
	}
	return nil
}

// submitOptions are up's flags as the manager takes them.
func (o upOptions) submitOptions(selected []string) api.SubmitOptions {
	return api.SubmitOptions{Services: selected, RemoveOrphans: o.removeOrphans, ForceRecreate: o.forceRecreate,
		NoRecreate: o.noRecreate, StopGrace: graceOf(o.stopGrace)}
}

func (e *env) up(ctx context.Context, o upOptions) error {
	app, err := e.loadApp(ctx)
	if err != nil {
		return err
	}
	selected, err := prepareUp(app, o)
	if err != nil {
		return err
	}
	if o.dryRun {
		return e.upDryRun(ctx, app, o, selected) // dryrun.go
	}
	c, err := e.ensureManager(ctx)
	if err != nil {
		return err
	}
	defer e.images.Close()
	part := subsetApp(app, selected)
	if err := e.buildImages(ctx, part, o); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(e.stderr, "Build canceled; nothing was submitted")
			return &exitCodeError{code: exitInterrupted}
		}
		return err
	}
	if err := e.shipImages(ctx, c, part, o.waitTimeout); err != nil {
		return err
	}
	before, err := deployedApp(ctx, c, app.Name)
	if err != nil {
		return err
	}
	so, err := e.orphans(ctx, app, before, o.submitOptions(selected))
	if err != nil {
		return err
	}
	var done map[string]bool
	if o.abortOnExit {
		if done, err = finishedTasks(ctx, c, app.Name); err != nil {
			return err
		}
	}
	resp, err := c.SubmitAppWith(ctx, app, so)
	if err != nil {
		return err
	}
	if resp.App == nil {
		return fmt.Errorf("the manager accepted app %s but did not return it; run berth ps to see its state", app.Name)
	}
	e.printSubmitted(app.Name, before, resp)
	return e.followUp(ctx, c, subsetApp(resp.App, names(part.Services)), done, o)
}

// followUp follows the submitted services of app as up's flags say:
// attached, until the deploy converges, or not at all (-d). Ctrl-C ends
// only the following: the cluster goes on with the deploy.
func (e *env) followUp(ctx context.Context, c *api.Client, app *types.App, done map[string]bool, o upOptions) error {
	var err error
	switch {
	case o.abortOnExit:
		err = e.attachUp(ctx, c, app, done, o) // upattach.go
	case o.detach && !o.wait:
		return nil
	default:
		err = e.followDeploy(ctx, c, app, o.waitTimeout)
	}
	if err != nil && ctx.Err() != nil {
		fmt.Fprintf(e.stderr, "\nInterrupted: the deploy of app %s goes on in the cluster; follow it with berth deployments or berth ps\n", app.Name)
		return &exitCodeError{code: exitInterrupted}
	}
	return err
}

// exitInterrupted is the exit code of a command ended by Ctrl-C (128+SIGINT).
const exitInterrupted = 130

// deployedApp is the app as the cluster has it, nil when it has none.
func deployedApp(ctx context.Context, c *api.Client, name string) (*types.App, error) {
	a, err := c.GetApp(ctx, name)
	if errors.Is(err, api.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read app %s: %w", name, err)
	}
	return a, nil
}

// printSubmitted says what the submission did to each service.
func (e *env) printSubmitted(name string, before *types.App, resp *api.SubmitResponse) {
	fmt.Fprintf(e.stdout, "App %s submitted (version %d)\n", name, resp.App.Version)
	width := 0
	for _, s := range resp.App.Services {
		width = max(width, len(s.Name))
	}
	for _, n := range resp.Removed {
		width = max(width, len(n))
	}
	for _, s := range resp.App.Services {
		if s.IsOneOff() {
			continue // berth run's, untouched by up
		}
		fmt.Fprintf(e.stdout, "  %-*s  %s\n", width, s.Name, submitVerdict(s.Name, before, resp))
	}
	for _, n := range resp.Removed {
		fmt.Fprintf(e.stdout, "  %-*s  removed\n", width, n)
	}
}

func submitVerdict(name string, before *types.App, resp *api.SubmitResponse) string {
	if before == nil || before.Service(name) == nil {
		return "created"
	}
	verdict := "updated" // e.g. only its replica count moved
	switch {
	case slices.Contains(resp.Changed, name):
		verdict = "changed"
	case slices.Contains(resp.Unchanged, name):
		verdict = "unchanged"
	}
	// A replica count that moved is news even when the spec did not
	// (up after berth scale sets the file's count again).
	old, now := before.Service(name), resp.App.Service(name)
	if now == nil || old.Replicas == now.Replicas || now.Mode == types.ModeGlobal {
		return verdict
	}
	moved := fmt.Sprintf("%d -> %s", old.Replicas, countOf(now.Replicas, "replica", "replicas"))
	if verdict == "changed" {
		return "changed, " + moved
	}
	return moved
}
