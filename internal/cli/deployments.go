package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

func newDeploymentsCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "deployments",
		Short: "List the app's deployments (rollouts of new service versions)",
		Long: `List the app's deployments: one per version of a service, with its state
(running, paused, failed, succeeded, rolled_back, superseded), its progress
(replicas updated and up of those wanted) and, once it stopped short, why:
a stable code and a sentence. --json prints them as a JSON array.`,
		Example: "  berth deployments\n  berth deployments --json -p shop",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.deployments(cmd.Context())
		},
	}
}

func (e *env) deployments(ctx context.Context) error {
	name, err := e.appName(ctx)
	if err != nil {
		return err
	}
	ds, _, err := e.client().ListDeployments(ctx, api.DeploymentQuery{App: name})
	if err != nil {
		return err
	}
	if e.structured() {
		return writeJSON(e, api.SummarizeDeployments(ds))
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tVERSION\tSTATE\tPROGRESS\tUPDATED\tREASON")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%s\n", d.Service, versions(d), d.State, rolloutProgress(d),
			age(e.now(), d.UpdatedAt), dash(reasonText(d)))
	}
	return tw.Flush()
}

func versions(d *api.Deployment) string {
	switch {
	case d.FromVersion == 0:
		return fmt.Sprintf("%d (new)", d.ToVersion)
	case d.Rollback:
		return fmt.Sprintf("%d -> %d (rollback)", d.FromVersion, d.ToVersion)
	}
	return fmt.Sprintf("%d -> %d", d.FromVersion, d.ToVersion)
}

// rolloutProgress is "2/4 updated, 1 up" (", 1 failed").
func rolloutProgress(d *api.Deployment) string {
	s := fmt.Sprintf("%d/%d updated, %d up", d.Updated, d.Total, d.Healthy)
	if d.Failed > 0 {
		s += fmt.Sprintf(", %d failed", d.Failed)
	}
	return s
}

func reasonText(d *api.Deployment) string {
	if d.Reason == "" {
		return ""
	}
	return d.ReasonCode + ": " + d.Reason
}

// appDeployments reads the app's deployments; a manager from before
// deployments has none, and `up` then follows the controller's verdicts.
func appDeployments(ctx context.Context, c *api.Client, app string) ([]*api.Deployment, error) {
	ds, _, err := c.ListDeployments(ctx, api.DeploymentQuery{App: app})
	if errors.Is(err, api.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the deployments of app %s: %w", app, err)
	}
	return ds, nil
}

// withDeployments makes each followed service's outcome that of the
// deployment of the version submitted, where it has one: on its way while
// it runs (whatever the verdict says: under failure_action continue the
// rollout goes on, and the deployment fails at its end), failed with its
// reason once it paused, failed, was rolled back or superseded, and the
// verdict's once it succeeded.
func withDeployments(p progress, followed *types.App, deps []*api.Deployment) progress {
	byID := map[string]*api.Deployment{}
	for _, d := range deps {
		byID[d.ID] = d
	}
	for i := range p.Services {
		sp := &p.Services[i]
		f := followed.Service(sp.Name)
		if f == nil {
			continue
		}
		d := byID[types.DeploymentID(followed.Name, sp.Name, f.Version)]
		if d == nil {
			continue
		}
		switch d.State {
		case api.DeploymentSucceeded:
			// The verdict has the last word: it is judged on the replicas
			// wanted now (berth scale since), the deployment on its own.
		case api.DeploymentRunning:
			sp.Done, sp.Failure = false, ""
			if d.FromVersion != 0 {
				sp.Rollout = "rolling out: " + rolloutProgress(d)
			}
		case api.DeploymentRolledBack:
			// up fails either way, but only once the rollback it caused has
			// ended: exiting while the old version is still coming back
			// would leave a script to find out by itself when the service
			// serves again, and whether it does.
			rb := byID[types.DeploymentID(followed.Name, sp.Name, d.ToVersion+1)]
			switch {
			case rb == nil || !rb.Rollback || rb.FromVersion != d.ToVersion:
				sp.Done, sp.Failure = false, deploymentFailure(d)
			case rb.State == api.DeploymentRunning:
				sp.Done, sp.Failure = false, ""
				sp.Rollout = fmt.Sprintf("rolling back to version %d: %s", d.FromVersion, rolloutProgress(rb))
			default:
				sp.Done, sp.Failure = false, deploymentFailure(d)+"; "+rollbackOutcome(rb)
			}
		default:
			sp.Done, sp.Failure = false, deploymentFailure(d)
		}
	}
	p.State, p.Reason = overall(p.Services, p.stopping)
	p.Failed = nil
	for i := range p.Services {
		if p.Services[i].Failure != "" {
			p.Failed = &p.Services[i]
			break
		}
	}
	return p
}

// rollbackOutcome says how the automatic rollback rb, now ended, went.
func rollbackOutcome(rb *api.Deployment) string {
	if rb.State == api.DeploymentSucceeded {
		return fmt.Sprintf("the rollback (version %d) succeeded and the previous spec serves again", rb.ToVersion)
	}
	return fmt.Sprintf("the rollback (version %d) %s too (%s): %s; see berth inspect %s", rb.ToVersion, endedWord(rb.State),
		orUnknown(rb.ReasonCode), orUnknown(rb.Reason), rb.Service)
}

// endedWord says how a deployment in state ended, as a verb phrase.
func endedWord(state string) string {
	what := map[string]string{
		api.DeploymentPaused:     "was paused",
		api.DeploymentFailed:     "failed",
		api.DeploymentRolledBack: "was rolled back",
		api.DeploymentSuperseded: "was superseded",
	}[state]
	if what == "" {
		what = "ended " + state
	}
	return what
}

// deploymentFailure is why a deployment stopped short, in one sentence.
func deploymentFailure(d *api.Deployment) string {
	return fmt.Sprintf("its deployment to version %d %s (%s): %s", d.ToVersion, endedWord(d.State), orUnknown(d.ReasonCode), orUnknown(d.Reason))
}
