package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

type rollbackOptions struct {
	detach  bool
	timeout time.Duration
}

func newRollbackCommand(e *env) *cobra.Command {
	var o rollbackOptions
	cmd := &cobra.Command{
		Use:   "rollback SERVICE",
		Short: "Roll a service back to its previous version",
		Long: `Roll a service back to the spec its current version replaced, as a new
version rolled out by the service's rollback_config, and follow it as up
does. A paused deployment is ended this way too (or resumed with berth up).`,
		Example: "  berth rollback web\n  berth rollback -p shop api -d",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.rollback(cmd.Context(), args[0], o)
		},
	}
	cmd.Flags().BoolVarP(&o.detach, "detach", "d", false, "return once the rollback started, without waiting")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the rollback to converge")
	return cmd
}

func (e *env) rollback(ctx context.Context, service string, o rollbackOptions) error {
	name, err := e.appName(ctx)
	if err != nil {
		return err
	}
	c := e.client()
	d, err := c.RollbackService(ctx, name, service)
	if errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("app %s has no service %s; see berth ps", name, service)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Rolling %s back: version %d puts back the spec it replaced (deployment %s)\n", service, d.ToVersion, d.ID)
	if o.detach {
		return nil
	}
	app, err := c.GetApp(ctx, name)
	if err != nil {
		return fmt.Errorf("read app %s: %w", name, err)
	}
	svc := app.Service(service)
	if svc == nil || svc.Version < d.ToVersion {
		return fmt.Errorf("the manager started the rollback of %s but does not show it yet; follow it with berth deployments", service)
	}
	followed := *app
	followed.Services = []*types.Service{{Name: service, Version: d.ToVersion}}
	return e.followDeploy(ctx, c, &followed, o.timeout)
}
