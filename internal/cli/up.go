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
	timeout time.Duration
	noBuild bool
	build   bool
	dryRun  bool
}

func newUpCommand(e *env) *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Deploy the Compose app and wait until it runs",
		Long: `Deploy the Compose app: build images that need building, push them (and
images only this machine's engine has) to the cluster's registry, submit the
app, and follow the deploy until every replica runs (and is healthy, where
the service has a healthcheck) or a service cannot converge.

When no --addr or BERTH_ADDR is given and no manager answers at the default
address, up starts a local one-node cluster first.`,
		Example: "  berth up\n  berth up -f compose.yaml -f compose.prod.yaml -d\n  berth up --build --timeout 10m\n  berth up --dry-run",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.build && o.noBuild {
				return errors.New("--build and --no-build cannot be used together; pick one")
			}
			return e.up(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.detach, "detach", "d", false, "return once the app is submitted, without waiting")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the deploy to converge")
	f.BoolVar(&o.noBuild, "no-build", false, "do not build images, even missing ones")
	f.BoolVar(&o.build, "build", false, "build images even when they exist")
	f.BoolVar(&o.dryRun, "dry-run", false, "show what up would change (services, fields, tasks) and change nothing (--json for a script)")
	return cmd
}

func (e *env) up(ctx context.Context, o upOptions) error {
	app, err := e.loadApp(ctx)
	if err != nil {
		return err
	}
	if o.dryRun {
		return e.upDryRun(ctx, app) // dryrun.go
	}
	c, err := e.ensureManager(ctx)
	if err != nil {
		return err
	}
	defer e.images.Close()
	if err := e.buildImages(ctx, app, o); err != nil {
		return err
	}
	if err := e.shipImages(ctx, c, app, o.timeout); err != nil {
		return err
	}
	before, err := c.GetApp(ctx, app.Name)
	if errors.Is(err, api.ErrNotFound) {
		before, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("read app %s: %w", app.Name, err)
	}
	resp, err := c.SubmitApp(ctx, app)
	if err != nil {
		return err
	}
	if resp.App == nil {
		return fmt.Errorf("the manager accepted app %s but did not return it; run berth ps to see its state", app.Name)
	}
	e.printSubmitted(app.Name, before, resp)
	if o.detach {
		return nil
	}
	return e.followDeploy(ctx, c, resp.App, o.timeout)
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
