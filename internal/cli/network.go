package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth/api"
	"github.com/spf13/cobra"
)

// newNetworkCommand groups the cluster's overlay networks: the apps' own
// and the cluster networks apps share by declaring them external.
func newNetworkCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "List, create, inspect and remove the cluster's networks",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var (
		subnet   string
		internal bool
		labels   []string
	)
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Make a cluster network that apps join by declaring it external",
		Long: `create makes a network of the whole cluster: every node gets a slice of its
subnet once a task on it joins. Apps share it by declaring it external in
their Compose file:

  networks:
    shared:
      external: true

and their services on it reach each other by service name, across nodes.
No app owns it, so no app's down removes it; berth network rm does, once no
app declares it. The subnet comes from the cluster's address pool unless
--subnet chooses one, which must overlap no other network's.`,
		Example: "  berth network create shared\n  berth network create --subnet 10.100.0.0/16 --internal --label team=data backend",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := parseLabels(labels)
			if err != nil {
				return err
			}
			n, err := e.client().CreateNetwork(cmd.Context(), api.NetworkCreate{Name: args[0], Subnet: subnet, Internal: internal, Labels: l})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Created network %s (%s); join it with external: true in a Compose file\n", n.Name, n.Subnet)
			return nil
		},
	}
	create.Flags().StringVar(&subnet, "subnet", "", "the network's subnet, such as 10.100.0.0/16 (default: the next free one of the cluster's address pool)")
	create.Flags().BoolVar(&internal, "internal", false, "give the network no route out of the cluster")
	create.Flags().StringArrayVar(&labels, "label", nil, "a label KEY=VALUE (repeatable)")
	cmd.AddCommand(
		&cobra.Command{
			Use: "ls", Aliases: []string{"list"}, Short: "List the apps' networks and the cluster networks", Args: cobra.NoArgs,
			Example: "  berth network ls\n  berth network ls --json",
			RunE:    func(cmd *cobra.Command, _ []string) error { return e.networkLs(cmd.Context()) },
		},
		create,
		&cobra.Command{
			Use: "inspect NETWORK...", Short: "Show networks in detail (JSON): subnet, each node's slice, the services on it",
			Example: "  berth network inspect shared",
			Args:    cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return inspectJSON(cmd.Context(), e, args, e.client().Network)
			},
		},
		&cobra.Command{
			Use: "rm NETWORK...", Aliases: []string{"remove"}, Short: "Remove cluster networks no app declares",
			Example: "  berth network rm shared",
			Args:    cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				for _, name := range args {
					if err := e.client().RemoveNetwork(cmd.Context(), name); err != nil {
						return err
					}
					fmt.Fprintln(e.stdout, name)
				}
				return nil
			},
		},
	)
	return cmd
}

func (e *env) networkLs(ctx context.Context) error {
	ns, err := e.client().Networks(ctx)
	if err != nil {
		return err
	}
	if e.structured() {
		return e.render(ns)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCOPE\tAPP\tSUBNET\tNODES\tSERVICES")
	for _, n := range ns {
		app := n.App
		if n.Scope == api.ScopeCluster {
			app = strings.Join(n.Apps, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", n.Name, scopeLabel(n), dash(app), n.Subnet, len(n.Slices), len(n.Services))
	}
	return tw.Flush()
}

// scopeLabel says what a network is: an app's own, or a cluster network
// (internal ones say so).
func scopeLabel(n api.Network) string {
	if n.Internal {
		return n.Scope + ",internal"
	}
	return n.Scope
}

// inspectJSON prints, as one JSON array, what get returns for each name,
// as docker's inspect verbs do; the first error stops it.
func inspectJSON[T any](ctx context.Context, e *env, names []string, get func(context.Context, string) (*T, error)) error {
	out := make([]*T, 0, len(names))
	for _, name := range names {
		v, err := get(ctx, name)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	if e.structured() {
		return e.render(out)
	}
	enc := json.NewEncoder(e.stdout) // JSON without -o too, as docker's inspect verbs
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// newVolumeCommand lists the apps' named volumes and where each replica's
// copy is.
func newVolumeCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "List, inspect and remove the apps' named volumes and the nodes that hold them",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		&cobra.Command{
			Use: "ls", Aliases: []string{"list"}, Short: "List named volumes: app, driver, the nodes holding them", Args: cobra.NoArgs,
			Example: "  berth volume ls\n  berth volume ls --json",
			RunE:    func(cmd *cobra.Command, _ []string) error { return e.volumeLs(cmd.Context()) },
		},
		&cobra.Command{
			Use: "inspect VOLUME...", Short: "Show volumes in detail (JSON): each replica's node, the tasks mounting it",
			Example: "  berth volume inspect shop_data",
			Args:    cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return inspectJSON(cmd.Context(), e, args, e.client().Volume)
			},
		},
		&cobra.Command{
			Use: "rm VOLUME...", Aliases: []string{"remove"}, Short: "Remove named volumes from every node that holds a copy",
			Long: `rm removes a named volume's copy on every node that holds one (the nodes its
pins name; without pins, every node), and forgets the pins, so the replicas'
next placement may pick any node, where the volume starts empty. It is
refused while a task mounts the volume: scale the service to 0 or run berth
down (without -v) first. Each node removes its copy once it hears of it; a
node that is down does so when it is back (berth volume inspect lists the
nodes yet to do it). External volumes are not berth's to remove.`,
			Example: "  berth volume rm shop_data",
			Args:    cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				for _, name := range args {
					v, err := e.client().RemoveVolume(cmd.Context(), name)
					if err != nil {
						return err
					}
					if len(v.Removing) == 0 {
						fmt.Fprintln(e.stdout, name)
						continue
					}
					fmt.Fprintf(e.stdout, "%s (removing on node %s)\n", name, strings.Join(v.Removing, ", "))
				}
				return nil
			},
		},
	)
	return cmd
}

func (e *env) volumeLs(ctx context.Context) error {
	vs, err := e.client().Volumes(ctx)
	if err != nil {
		return err
	}
	if e.structured() {
		return e.render(vs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tAPP\tDRIVER\tNODES\tTASKS")
	for _, v := range vs {
		nodes := map[string]bool{}
		for _, r := range v.Replicas {
			nodes[r.Node] = true
		}
		driver := v.Driver
		if v.External {
			driver += ",external"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", v.Name, v.App, driver, dash(strings.Join(slices.Sorted(maps.Keys(nodes)), ",")), len(v.Tasks))
	}
	return tw.Flush()
}
