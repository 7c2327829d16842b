package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/types"
)

// The image verbs of docker compose: build, pull and push, for the
// project's services. Images are built and pulled on this machine's engine,
// as Compose does; push sends them to the cluster's registry, which is
// where berth's nodes pull what no other registry has.

type buildOptions struct {
	noCache, pull, quiet bool
}

func newBuildCommand(e *env) *cobra.Command {
	var o buildOptions
	cmd := &cobra.Command{
		Use:   "build [SERVICE...]",
		Short: "Build the images of the project's services that have a build section",
		Long: `Build, on this machine's Docker engine, the image of every service with a
build section (or of the services named), as docker compose build does. A
service without an image name gets <project>-<service>. berth up builds
missing images by itself; build is for building ahead, or again.`,
		Example: "  berth build\n  berth build --no-cache api",
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.build(cmd.Context(), args, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.noCache, "no-cache", false, "do not use the cache when building")
	f.BoolVar(&o.pull, "pull", false, "always try to pull a newer version of the base images")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print nothing but errors")
	return cmd
}

func (e *env) build(ctx context.Context, names []string, o buildOptions) error {
	app, svcs, err := e.projectServices(ctx, names)
	if err != nil {
		return err
	}
	defer e.images.Close()
	progress := quietable(e.stderr, o.quiet)
	for _, svc := range svcs {
		if svc.Build == nil {
			continue
		}
		nameBuiltImage(app, svc)
		bo := imageBuildOptions(svc)
		bo.NoCache, bo.Pull = o.noCache, o.pull
		if _, err := e.buildService(ctx, svc, bo, progress); err != nil {
			return err
		}
	}
	return nil
}

type pullOptions struct {
	quiet, ignoreFailures bool
}

func newPullCommand(e *env) *cobra.Command {
	var o pullOptions
	cmd := &cobra.Command{
		Use:   "pull [SERVICE...]",
		Short: "Pull the images of the project's services onto this machine's engine",
		Long: `Pull, onto this machine's Docker engine, the image of every service (or of the
services named), as docker compose pull does. Services that are built
(a build section) or run on the exec driver are skipped. A cluster's nodes
pull the images they run by themselves at deploy time; pull is for checking
that the images are there, and for the local cluster, whose node uses this
machine's engine.`,
		Example: "  berth pull\n  berth pull db",
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.pull(cmd.Context(), args, o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print nothing but errors")
	f.BoolVar(&o.ignoreFailures, "ignore-pull-failures", false, "pull what can be pulled and warn about the rest")
	return cmd
}

func (e *env) pull(ctx context.Context, names []string, o pullOptions) error {
	_, svcs, err := e.projectServices(ctx, names)
	if err != nil {
		return err
	}
	defer e.images.Close()
	progress := quietable(e.stderr, o.quiet)
	for _, svc := range svcs {
		if svc.Build != nil || svc.Driver == types.DriverExec || svc.Image == "" || svc.PullPolicy == types.PullNever {
			continue
		}
		fmt.Fprintf(progress, "Pulling %s (image %s)\n", svc.Name, svc.Image)
		if err := e.images.Pull(ctx, svc.Image, &indentWriter{w: progress, indent: "  "}); err != nil {
			if !o.ignoreFailures {
				return fmt.Errorf("service %s: %w", svc.Name, err)
			}
			fmt.Fprintf(e.stderr, "warning: service %s: %v\n", svc.Name, err)
		}
	}
	return nil // as compose: with --ignore-pull-failures, failures are warnings
}

func newPushCommand(e *env) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "push [SERVICE...]",
		Short: "Push the project's built and local-only images to the cluster's registry",
		Long: `Push to the cluster's registry (every manager embeds one) the images its nodes
could not pull otherwise: each built image (build it first with berth build
or berth up) and each image only this machine's engine holds, as berth up
does before it submits. Unlike docker compose push, the target is the
cluster's registry, not the image's own: that is the registry berth's nodes
pull from. It returns once min(2, managers) managers hold every image.
On the local cluster, whose node uses this machine's engine, there is
nothing to push.`,
		Example: "  berth push\n  berth push api",
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.push(cmd.Context(), args, wait)
		},
	}
	cmd.Flags().DurationVar(&wait, "wait-timeout", 5*time.Minute, "how long to wait for the managers to hold each pushed image")
	return cmd
}

func (e *env) push(ctx context.Context, names []string, wait time.Duration) error {
	app, svcs, err := e.projectServices(ctx, names)
	if err != nil {
		return err
	}
	c := e.client()
	defer e.images.Close()
	var missing []string
	for _, svc := range svcs {
		if svc.Build == nil {
			continue
		}
		nameBuiltImage(app, svc)
		id, err := e.serviceImage(ctx, svc, upOptions{noBuild: true}) // the local image, never a build
		if err != nil {
			return err
		}
		if id == "" {
			missing = append(missing, svc.Name)
		}
		svc.ImageID = id
	}
	if len(missing) > 0 {
		return fmt.Errorf("no image built yet for %s: run berth build first", strings.Join(missing, ", "))
	}
	sub := *app
	sub.Services = svcs
	ship, err := e.imagesToShip(ctx, &sub)
	if err != nil {
		return err
	}
	if len(ship) == 0 {
		fmt.Fprintln(e.stderr, "Nothing to push: the nodes pull every image of these services from its own registry")
		return nil
	}
	return e.shipImages(ctx, c, &sub, wait)
}

// projectServices loads the project and picks the services named (all when
// none is).
func (e *env) projectServices(ctx context.Context, names []string) (*types.App, []*types.Service, error) {
	app, err := e.loadApp(ctx)
	if err != nil {
		return nil, nil, err
	}
	svcs, err := pickServices(app, names)
	return app, svcs, err
}

// quietable is w, or nothing with -q.
func quietable(w io.Writer, quiet bool) io.Writer {
	if quiet {
		return io.Discard
	}
	return w
}

// pickServices returns the app's services named (all of them when none is),
// in the app's order, or an error naming those the app does not have.
func pickServices(app *types.App, names []string) ([]*types.Service, error) {
	if len(names) == 0 {
		return app.Services, nil
	}
	var unknown []string
	for _, n := range names {
		if app.Service(n) == nil {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, errors.New(noSuchServices(app, unknown))
	}
	var out []*types.Service
	for _, s := range app.Services {
		if slices.Contains(names, s.Name) {
			out = append(out, s)
		}
	}
	return out, nil
}

func noSuchServices(app *types.App, unknown []string) string {
	var have []string
	for _, s := range app.Services {
		have = append(have, s.Name)
	}
	what := "service " + unknown[0]
	if len(unknown) > 1 {
		what = "services " + strings.Join(unknown, ", ")
	}
	return fmt.Sprintf("app %s has no %s; its Compose file has %s", app.Name, what, strings.Join(have, ", "))
}
