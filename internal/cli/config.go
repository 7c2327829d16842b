package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/berth-dev/berth/internal/compose"
	"github.com/berth-dev/berth/internal/server"
	"github.com/spf13/cobra"
)

type configOptions struct {
	services bool
	volumes  bool
	images   bool
	quiet    bool
	berth    bool
	format   string
}

func newConfigCommand(e *env) *cobra.Command {
	var o configOptions
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the app as Compose and berth resolve it from the Compose files",
		Long: `Load the Compose files (interpolation, .env, profiles, extends, merged -f
files), print the resolved Compose model as docker compose config does, and
warn about every key berth does not honour. Nothing is sent to a manager.
--format json prints the model as JSON; --berth prints berth's own model
instead: the app berth would deploy (-o json|yaml choose its format too).
--services, --volumes and --images print names, one a line, as Compose.

Unlike Compose, whose default is restart: "no", berth restarts a failed task
by default (on-failure, as Swarm does); config notes each service that sets
no restart policy.`,
		Example: "  berth config\n  berth config --format json\n  berth config --berth\n  berth config --services\n  berth config -q -f compose.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.config(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.services, "services", false, "print only the service names, one a line")
	f.BoolVar(&o.volumes, "volumes", false, "print only the named volumes, one a line")
	f.BoolVar(&o.images, "images", false, "print only the services' images, one a line")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "only check the files (and print warnings)")
	f.BoolVar(&o.berth, "berth", false, "print berth's model of the app instead of the Compose model")
	f.StringVar(&o.format, "format", "", "yaml or json")
	return cmd
}

// modelRenderer prints the resolved Compose model; composeLoader is one.
// Fakes that load no files need not be.
type modelRenderer interface {
	RenderModel(ctx context.Context, e *env, format string) error
}

// RenderModel prints compose-go's model of the files the flags name.
func (composeLoader) RenderModel(ctx context.Context, e *env, format string) error {
	return compose.RenderModel(ctx, e.stdout, e.composeOptions(), format)
}

func (e *env) config(ctx context.Context, o configOptions) error {
	format := o.format
	switch {
	case format != "" && e.structured() && format != e.global.output:
		return fmt.Errorf("--format %s and -o %s ask for two formats; give one", format, e.global.output)
	case format == "":
		format = e.global.output
	}
	if format != "" && format != outputJSON && format != outputYAML {
		return fmt.Errorf("--format takes yaml or json, not %q", o.format)
	}
	app, notes, err := e.loadAppNotes(ctx)
	if err != nil {
		return err
	}
	// The manager's own rules, so config refuses what up would.
	if err := server.ValidateApp(app); err != nil {
		return fmt.Errorf("the manager would refuse this app: %w", err)
	}
	e.printNotes(notes)
	switch {
	case o.quiet:
		return nil
	case o.services:
		for _, s := range app.Services {
			fmt.Fprintln(e.stdout, s.Name)
		}
		return nil
	case o.volumes:
		for _, k := range slices.Sorted(maps.Keys(app.Volumes)) {
			fmt.Fprintln(e.stdout, k)
		}
		return nil
	case o.images:
		for _, s := range app.Services {
			if s.Image != "" {
				fmt.Fprintln(e.stdout, s.Image)
			}
		}
		return nil
	case o.berth && format == outputJSON:
		return compose.RenderJSON(e.stdout, app)
	case o.berth:
		return compose.Render(e.stdout, app)
	}
	m, ok := e.project.(modelRenderer)
	if !ok {
		return fmt.Errorf("this build cannot print the Compose model; use berth config --berth")
	}
	return m.RenderModel(ctx, e, format)
}
