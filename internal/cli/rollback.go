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
	return e.followService(ctx, c, name, service, d.ToVersion, o.timeout)
}

// followService follows version v of one service of app as up does.
func (e *env) followService(ctx context.Context, c *api.Client, app, service string, v uint64, timeout time.Duration) error {
	stored, err := c.GetApp(ctx, app)
	if err != nil {
		return fmt.Errorf("read app %s: %w", app, err)
	}
	svc := stored.Service(service)
	if svc == nil || svc.Version < v {
		return fmt.Errorf("the manager has not applied the change to %s yet; follow it with berth deployments", service)
	}
	followed := *stored
	followed.Services = []*types.Service{{Name: service, Version: v}}
	return e.followDeploy(ctx, c, &followed, timeout)
}

// newDeployCommand groups the commands that steer a running deployment.
func newDeployCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Steer a service's deployment (promote its canaries)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var o rollbackOptions
	promote := &cobra.Command{
		Use:   "promote SERVICE",
		Short: "Promote the canaries of a service's deployment: the rest of its replicas roll",
		Long: `Promote the canaries of the service's current deployment (x-berth-update
canary without auto_promote): the rest of its replicas roll, and the
deployment is followed as up does.`,
		Example: "  berth deploy promote web\n  berth deploy promote -p shop api -d",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.promote(cmd.Context(), args[0], o)
		},
	}
	promote.Flags().BoolVarP(&o.detach, "detach", "d", false, "return once promoted, without waiting")
	promote.Flags().DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the deployment to converge")
	cmd.AddCommand(promote)
	return cmd
}

func (e *env) promote(ctx context.Context, service string, o rollbackOptions) error {
	name, err := e.appName(ctx)
	if err != nil {
		return err
	}
	c := e.client()
	d, err := c.PromoteService(ctx, name, service)
	if errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("app %s has no service %s; see berth ps", name, service)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Promoted the canaries of %s version %d: the rest of its replicas roll (deployment %s)\n", service, d.ToVersion, d.ID)
	if o.detach {
		return nil
	}
	return e.followService(ctx, c, name, service, d.ToVersion, o.timeout)
}
