package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/machine"
)

// clusterOptions are `berth cluster create`'s flags.
type clusterOptions struct {
	managers, agents int
	images           []string
	subnet           string
	labels           []string
	registryGCGrace  time.Duration // the managers' --registry-gc-grace (hidden, for tests)
}

// defaultClusterName names a cluster made without a name.
const defaultClusterName = "berth"

func newClusterCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Make a whole cluster of local hosts on this machine, list and remove them",
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var o clusterOptions
	create := &cobra.Command{
		Use:   "create [NAME] --managers M --agents N [--image IMG]... [--subnet CIDR]",
		Short: "Make M manager hosts and N agent hosts here, and a context for them (made current)",
		Long: `Make a cluster of local hosts on this machine (the local driver; needs root):
M managers (1, 3 or 5) in one Raft group over mutual TLS and N agents, each host
with its own address on a bridge of the cluster's own subnet, agents with their
own Docker engine. The first manager bootstraps; the others join in parallel.
berth up ships the images an app needs to the agents through the cluster's
registry; each --image is also copied from this machine's engine into every
agent's engine ahead (for pull_policy: never). A context named after the cluster is made and becomes
the current one. A failure removes everything made.`,
		Example: "  berth cluster create t1 --managers 3 --agents 3\n  berth cluster create --agents 2 --image nginx:alpine --subnet 10.50.0.0/24",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := defaultClusterName
			if len(args) == 1 {
				name = args[0]
			}
			return e.clusterCreate(cmd.Context(), name, o)
		},
	}
	f := create.Flags()
	f.IntVar(&o.managers, "managers", 1, "manager hosts: 1, 3 or 5")
	f.IntVar(&o.agents, "agents", 1, "agent hosts")
	f.StringArrayVar(&o.images, "image", nil, "image to copy from this machine's engine into every agent's engine ahead (repeatable)")
	f.StringVar(&o.subnet, "subnet", "", "the cluster's IPv4 subnet (default: a free /24 that overlaps no route, resolver or Docker pool)")
	f.StringArrayVar(&o.labels, "label", nil, "node label KEY=VALUE on every host (repeatable)")
	f.DurationVar(&o.registryGCGrace, "registry-gc-grace", 0, "the managers' --registry-gc-grace: how long unreferenced images and blobs are kept (for tests)")
	_ = f.MarkHidden("registry-gc-grace")
	ls := &cobra.Command{
		Use: "ls", Short: "List the clusters of hosts made on this machine", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return e.clusterLs() },
	}
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove every host of a cluster made here, and its context (no quorum needed)",
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return e.clusterRm(cmd.Context(), args[0]) },
	}
	cmd.AddCommand(create, ls, rm)
	for _, c := range cmd.Commands() {
		c.Annotations = map[string]string{noContextAnnotation: "true"}
	}
	return cmd
}

// clusterRow is a cluster as `cluster ls --json` prints it.
type clusterRow struct {
	machine.Cluster
	Managers int `json:"managers"`
	Agents   int `json:"agents"`
}

func (e *env) clusterLs() error {
	store, err := e.machineStore()
	if err != nil {
		return err
	}
	cs, err := store.Clusters()
	if err != nil {
		return err
	}
	rows := make([]clusterRow, 0, len(cs))
	for _, c := range cs {
		hs, err := store.List(c.Name)
		if err != nil {
			return err
		}
		r := clusterRow{Cluster: *c}
		for _, h := range hs {
			if h.Role == machine.RoleManager {
				r.Managers++
			} else {
				r.Agents++
			}
		}
		rows = append(rows, r)
	}
	if e.structured() {
		return writeJSON(e, rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMANAGERS\tAGENTS\tSUBNET\tCONTEXT\tCREATED")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", r.Name, r.Managers, r.Agents, dash(r.Subnet), dash(r.Context), r.Created.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// clusterRm removes every host recorded here for the cluster through its
// driver, then the context made for it and the cluster's record. It asks
// no manager: it works with no quorum left.
func (e *env) clusterRm(ctx context.Context, name string) error {
	start := time.Now()
	store, err := e.machineStore()
	if err != nil {
		return err
	}
	c, err := store.GetCluster(name)
	if errors.Is(err, machine.ErrNotFound) {
		hs, _ := store.List(name)
		if len(hs) == 0 {
			return fmt.Errorf("no cluster named %s was made on this machine; berth cluster ls lists them", name)
		}
		c = &machine.Cluster{Name: name} // hosts of `machine create` alone
	} else if err != nil {
		return err
	}
	hs, _ := store.List(name)
	drivers := func(n string) (machine.Driver, error) { return machineDrivers(e, n) }
	if err := machine.RemoveAll(ctx, drivers, store, name, stepPrinter(e.stderr, start)); err != nil {
		return fmt.Errorf("remove cluster %s: %w (run berth cluster rm %s again)", name, err, name)
	}
	if c.Context != "" {
		if err := e.dropContext(c.Context); err != nil {
			return err
		}
	}
	if err := store.DeleteCluster(name); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Removed cluster %s (%d hosts) in %.1fs\n", name, len(hs), time.Since(start).Seconds())
	return nil
}

// dropContext removes a context berth made for a cluster; a context gone
// already is fine.
func (e *env) dropContext(name string) error {
	cs, err := e.contextStore()
	if err != nil {
		return err
	}
	return cs.update(func(f *contextFile) error {
		if f.Contexts[name] == nil {
			return nil
		}
		delete(f.Contexts, name)
		if f.Current == name {
			f.Current = ""
		}
		return nil
	})
}
