package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

// newNodeCommand groups the node operations. Every NODE argument takes an
// ID, a name or a unique ID prefix.
func newNodeCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "List, inspect, drain, activate, label and remove nodes",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var force bool
	rm := &cobra.Command{
		Use:     "rm NODE...",
		Short:   "Remove nodes that are down (or, with --force, any node)",
		Example: "  berth node rm web-3\n  berth node rm --force 4f2a",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, ref := range args {
				if err := e.client().RemoveNode(cmd.Context(), ref, force); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "Removed node %s and revoked its certificate\n", ref)
			}
			return nil
		},
	}
	rm.Flags().BoolVar(&force, "force", false, "remove the node even if it is ready (its tasks are replaced elsewhere)")
	cmd.AddCommand(
		&cobra.Command{
			Use: "ls", Short: "List the cluster's nodes", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return e.nodeLs(cmd.Context()) },
		},
		&cobra.Command{
			Use: "inspect NODE...", Short: "Show nodes in detail (JSON)", Args: cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return e.nodeInspect(cmd.Context(), args) },
		},
		availabilityCommand(e, "drain", types.AvailabilityDrain, "Move tasks off nodes gracefully and place nothing new there"),
		availabilityCommand(e, "activate", types.AvailabilityActive, "Let nodes take tasks again"),
		rm,
		newNodeLabelCommand(e),
	)
	return cmd
}

func availabilityCommand(e *env, verb string, a types.Availability, short string) *cobra.Command {
	return &cobra.Command{
		Use: verb + " NODE...", Short: short, Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, ref := range args {
				n, err := e.client().SetNodeAvailability(cmd.Context(), ref, a)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "Node %s availability: %s\n", n.Name, n.Availability)
			}
			return nil
		},
	}
}

func newNodeLabelCommand(e *env) *cobra.Command {
	label := &cobra.Command{Use: "label", Short: "Add or remove node labels", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	label.AddCommand(
		&cobra.Command{
			Use: "add NODE KEY=VALUE...", Short: "Add or overwrite labels", Example: "  berth node label add web-1 zone=a disk=ssd",
			Args: cobra.MinimumNArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				add, err := parseLabels(args[1:])
				if err != nil {
					return err
				}
				return e.nodeLabels(cmd.Context(), args[0], api.LabelsRequest{Add: add})
			},
		},
		&cobra.Command{
			Use: "rm NODE KEY...", Short: "Remove labels", Example: "  berth node label rm web-1 zone",
			Args: cobra.MinimumNArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.nodeLabels(cmd.Context(), args[0], api.LabelsRequest{Remove: args[1:]})
			},
		},
	)
	return label
}

func (e *env) nodeLabels(ctx context.Context, ref string, req api.LabelsRequest) error {
	n, err := e.client().UpdateNodeLabels(ctx, ref, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Node %s labels: %s\n", n.Name, dash(formatLabels(n.Labels)))
	return nil
}

func (e *env) nodeLs(ctx context.Context) error {
	nodes, err := e.client().ListNodes(ctx)
	if err != nil {
		return err
	}
	if e.structured() {
		return writeJSON(e, nodes)
	}
	tasks, _, err := e.client().ListTasks(ctx, api.TaskQuery{})
	if err != nil {
		return err
	}
	running := map[string]int{}
	for _, t := range tasks {
		if t.State == types.TaskRunning {
			running[t.NodeID]++
		}
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tSTATUS\tAVAILABILITY\tDRIVERS\tTASKS\tLABELS\tHEARTBEAT")
	for _, n := range nodes {
		beat := "-"
		if !n.LastHeartbeat.IsZero() {
			beat = age(e.now(), n.LastHeartbeat) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", shortID(n.ID), n.Name, n.Role, n.Status, n.Availability,
			strings.Join(n.Drivers, ","), running[n.ID], dash(formatLabels(n.Labels)), beat)
	}
	return tw.Flush()
}

func (e *env) nodeInspect(ctx context.Context, refs []string) error {
	out := make([]*types.Node, 0, len(refs))
	for _, ref := range refs {
		n, err := e.client().GetNode(ctx, ref)
		if err != nil {
			return err
		}
		out = append(out, n)
	}
	if e.global.output == outputYAML {
		return e.render(out)
	}
	return renderAs(e.stdout, outputJSON, out) // inspect prints JSON by default, as docker's
}

func formatLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
