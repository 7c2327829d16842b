package cli

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/server"
	"github.com/spf13/cobra"
)

type configOptions struct {
	services bool
	quiet    bool
}

func newConfigCommand(e *env) *cobra.Command {
	var o configOptions
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the app as berth resolves it from the Compose files",
		Long: `Load the Compose files (interpolation, .env, profiles, extends, merged -f
files), print the app berth would deploy, and warn about every key berth
does not honour. Nothing is sent to a manager.

Unlike Compose, whose default is restart: "no", berth restarts a failed task
by default (on-failure, as Swarm does); config notes each service that sets
no restart policy.`,
		Example: "  berth config\n  berth config --services\n  berth config -q -f compose.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.config(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.services, "services", false, "print only the service names, one a line")
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "only check the files (and print warnings)")
	return cmd
}

func (e *env) config(ctx context.Context, o configOptions) error {
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
	}
	return e.project.Render(e.stdout, app)
}
