package cli

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

// newServiceLsCommand is `berth service ls`, as `docker service ls`: every
// service of every app on the cluster.
func newServiceLsCommand(e *env) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the services of every app on the cluster",
		Long: `List the services of every app on the cluster, as docker service ls does:
its name (APP_SERVICE, as a Swarm stack names it), mode, replicas running of
those wanted, image, published ports and the controller's verdict on its
current version. -q prints the names only; -o json|yaml one document.`,
		Example: "  berth service ls\n  berth service ls -q\n  berth service ls -o yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.serviceLs(cmd.Context(), quiet)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the services' names")
	return cmd
}

func (e *env) serviceLs(ctx context.Context, quiet bool) error {
	apps, tasks, err := e.clusterApps(ctx)
	if err != nil {
		return err
	}
	rows := serviceSummaries(apps, tasks)
	switch {
	case quiet:
		for _, r := range rows {
			fmt.Fprintln(e.stdout, r.Name)
		}
		return nil
	case e.structured():
		return e.render(rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMODE\tREPLICAS\tIMAGE\tPORTS\tVERSION\tVERDICT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Name, r.Mode, r.Replicas, dash(r.Image), dash(r.Ports), r.Version, dash(r.Verdict))
	}
	return tw.Flush()
}

// serviceSummaries are the services of apps, ordered by app then service,
// with their running replicas counted as Swarm does: tasks running and
// meant to (not those being stopped).
func serviceSummaries(apps []*types.App, tasks []*types.Task) []api.ServiceSummary {
	running := map[string]int{}
	nodes := map[string]map[string]bool{} // a global service's nodes
	for _, t := range tasks {
		if t.State != types.TaskRunning || t.DesiredState != types.DesiredRunning {
			continue
		}
		k := types.ServiceID(t.App, t.Service)
		running[k]++
		if nodes[k] == nil {
			nodes[k] = map[string]bool{}
		}
		nodes[k][t.NodeID] = true
	}
	var out []api.ServiceSummary
	for _, a := range apps {
		for _, s := range a.Services {
			k := types.ServiceID(a.Name, s.Name)
			r := api.ServiceSummary{
				Name: a.Name + "_" + s.Name, App: a.Name, Service: s.Name, Mode: cmp.Or(s.Mode, types.ModeReplicated),
				Running: running[k], Desired: s.Replicas, Image: s.Image, Ports: servicePorts(s),
				Version: s.Version, Verdict: verdict(s),
			}
			if r.Mode == types.ModeGlobal {
				r.Desired = len(nodes[k]) // Swarm's "global" count: the nodes it runs on
			}
			r.Replicas = fmt.Sprintf("%d/%d", r.Running, r.Desired)
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b api.ServiceSummary) int {
		return cmp.Or(strings.Compare(a.App, b.App), strings.Compare(a.Service, b.Service))
	})
	return out
}
