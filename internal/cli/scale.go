package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type scaleOptions struct {
	detach  bool
	timeout time.Duration
}

// scaleTarget is one SERVICE=N argument.
type scaleTarget struct {
	service  string
	replicas int
}

func newScaleCommand(e *env) *cobra.Command {
	var o scaleOptions
	cmd := &cobra.Command{
		Use:     "scale SERVICE=N [SERVICE=N...]",
		Short:   "Set the number of replicas of services",
		Example: "  berth scale web=5\n  berth scale web=3 worker=0 -d",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			targets, err := parseScaleArgs(args)
			if err != nil {
				return err
			}
			return e.scale(cmd.Context(), targets, o)
		},
	}
	cmd.Flags().BoolVarP(&o.detach, "detach", "d", false, "return without waiting for the replicas")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the services to converge")
	return cmd
}

// parseScaleArgs validates SERVICE=N arguments; an error names the bad one.
func parseScaleArgs(args []string) ([]scaleTarget, error) {
	seen := map[string]bool{}
	var out []scaleTarget
	for _, a := range args {
		svc, n, ok := strings.Cut(a, "=")
		if !ok || svc == "" || n == "" {
			return nil, fmt.Errorf("invalid scale argument %q: want SERVICE=N, e.g. web=3", a)
		}
		replicas, err := strconv.Atoi(n)
		if err != nil || replicas < 0 {
			return nil, fmt.Errorf("invalid scale argument %q: the replica count must be a whole number of 0 or more", a)
		}
		if seen[svc] {
			return nil, fmt.Errorf("invalid scale argument %q: service %s is given twice", a, svc)
		}
		seen[svc] = true
		out = append(out, scaleTarget{service: svc, replicas: replicas})
	}
	return out, nil
}

func (e *env) scale(ctx context.Context, targets []scaleTarget, o scaleOptions) error {
	name, err := e.appName(ctx)
	if err != nil {
		return err
	}
	c := e.client()
	for _, t := range targets {
		if err := c.Scale(ctx, name, t.service, t.replicas); err != nil {
			return fmt.Errorf("scale service %s: %w", t.service, err)
		}
		fmt.Fprintf(e.stdout, "%s scaled to %d\n", t.service, t.replicas)
	}
	if o.detach {
		return nil
	}
	app, err := c.GetApp(ctx, name)
	if err != nil {
		return fmt.Errorf("read app %s: %w", name, err)
	}
	// Follow only the services scaled: the others are not this command's
	// business, and may be mid-deploy of their own.
	keep := app.Services[:0]
	for _, s := range app.Services {
		for _, t := range targets {
			if s.Name == t.service {
				keep = append(keep, s)
			}
		}
	}
	app.Services = keep
	return e.followDeploy(ctx, c, app, o.timeout)
}
