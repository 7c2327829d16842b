package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/types"
)

// machineOptions are `berth machine create`'s flags.
type machineOptions struct {
	driver  string
	role    string
	labels  []string
	images  []string
	cluster string
	// opts are the driver's own flags (--ssh-addr...), by option key.
	opts map[string]*string
	// bools are the driver's boolean flags, by option key.
	bools map[string]*bool
}

func newMachineCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "machine",
		Short: "Make hosts for the cluster and tear them down (local namespaces or SSH hosts)",
		Long: `A machine is a host berth made and joined to the current context's cluster:
with the local driver a network namespace on this machine with its own
address, Docker engine and berth; with the ssh driver an existing Linux host.
The cluster records every machine; what tears a host down stays on the
machine that made it (` + "`$XDG_STATE_HOME/berth/machines`" + `).`,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var cluster string
	cmd.PersistentFlags().StringVar(&cluster, "cluster", "", "the cluster of hosts the machine belongs to on this machine (default: the current context's name)")
	cmd.AddCommand(newMachineCreateCommand(e, &cluster), newMachineLsCommand(e, &cluster),
		newMachineInspectCommand(e, &cluster), newMachineSSHCommand(e, &cluster),
		newMachineStateCommand(e, &cluster, "stop", "Stop berth (and the engine) on a host, keeping everything"),
		newMachineStateCommand(e, &cluster, "start", "Start berth on a stopped host again"),
		newMachineRmCommand(e, &cluster))
	return cmd
}

// sshFlags are the ssh driver's flags, by option key (the driver's own
// names, so its messages and the flags agree).
var sshFlags = []struct{ key, usage string }{
	{"ssh-addr", "ssh driver: the host's address, host[:port]"},
	{"ssh-user", "ssh driver: the user to log in as (default root; others use sudo -n)"},
	{"ssh-key", "ssh driver: private key file (default: the ssh-agent's keys)"},
	{"known-hosts", "ssh driver: known_hosts file (default ~/.ssh/known_hosts)"},
}

var sshBoolFlags = []struct{ key, usage string }{
	{"insecure-ignore-host-key", "ssh driver: accept any host key (not checked against known_hosts)"},
	{"install-docker", "ssh driver: install Docker with the host's package manager (apt-get, dnf, yum) and start it"},
}

func newMachineCreateCommand(e *env, cluster *string) *cobra.Command {
	o := machineOptions{opts: map[string]*string{}, bools: map[string]*bool{}}
	cmd := &cobra.Command{
		Use:   "create [--driver local|ssh] [--role agent|manager] [--label k=v]... NAME",
		Short: "Make a host and join it to the current context's cluster",
		Example: "  berth machine create a4\n" +
			"  berth machine create --role manager m4\n" +
			"  berth machine create --driver ssh --ssh-addr 192.0.2.10 --ssh-key ~/.ssh/id_ed25519 --label zone=b edge1",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.cluster = *cluster
			return e.machineCreate(cmd.Context(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.driver, "driver", "local", "how the host is made: local (a namespace on this machine) or ssh")
	f.StringVar(&o.role, "role", "agent", "what berth runs on it: agent or manager")
	f.StringArrayVar(&o.labels, "label", nil, "node label KEY=VALUE (repeatable)")
	f.StringArrayVar(&o.images, "image", nil, "local agent: image to copy from this machine's engine into its engine ahead (repeatable)")
	for _, fl := range sshFlags {
		o.opts[fl.key] = f.String(fl.key, "", fl.usage)
	}
	for _, fl := range sshBoolFlags {
		o.bools[fl.key] = f.Bool(fl.key, false, fl.usage)
	}
	return cmd
}

// machineCluster is the cluster of hosts a machine command works in.
func (e *env) machineCluster(flag string) string {
	return cmp.Or(flag, e.global.contextName, defaultContextName)
}

// machineSpec checks create's input and builds the spec, before anything
// is asked of the cluster or made.
func (e *env) machineSpec(name string, o machineOptions) (machine.Spec, error) {
	if err := types.CheckMachineName(name); err != nil {
		return machine.Spec{}, fmt.Errorf("machine name %w", err)
	}
	role := machine.Role(o.role)
	if role != machine.RoleAgent && role != machine.RoleManager {
		return machine.Spec{}, fmt.Errorf("--role %q: want agent or manager", o.role)
	}
	labels, err := parseMachineLabels(o.labels)
	if err != nil {
		return machine.Spec{}, err
	}
	spec := machine.Spec{Name: name, Cluster: e.machineCluster(o.cluster), Role: role, Labels: labels, Options: map[string]string{}}
	for k, v := range o.opts {
		if *v != "" {
			spec.Options[k] = *v
		}
	}
	for k, v := range o.bools {
		if *v {
			spec.Options[k] = "true"
		}
	}
	if o.driver != "ssh" && len(spec.Options) > 0 {
		return machine.Spec{}, fmt.Errorf("--%s is a flag of the ssh driver; add --driver ssh", slices.Sorted(maps.Keys(spec.Options))[0])
	}
	return spec, nil
}

func (e *env) machineCreate(ctx context.Context, name string, o machineOptions) error {
	start := time.Now()
	spec, err := e.machineSpec(name, o)
	if err != nil {
		return err
	}
	d, err := machineDrivers(e, o.driver)
	if err != nil {
		return fmt.Errorf("--driver: %w", err)
	}
	store, err := e.machineStore()
	if err != nil {
		return err
	}
	if c, err := store.GetCluster(spec.Cluster); err == nil && c.Subnet != "" && d.Name() == "local" {
		spec.Options["subnet"] = c.Subnet
	}
	if d.Name() == "local" && spec.Role == machine.RoleAgent {
		spec.Images = imageList(o.images)
	}
	if err := machine.CheckJoiner(d, spec); err != nil {
		if errors.Is(err, machine.ErrExists) {
			return fmt.Errorf("this machine has a host named %s in cluster %s already; pick another name or remove it with berth machine rm %s", name, spec.Cluster, name)
		}
		return err
	}
	c := e.client()
	if _, err := c.Machine(ctx, name); err == nil {
		return fmt.Errorf("a machine named %s is in the cluster; pick another name or remove it with berth machine rm %s", name, name)
	} else if !errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("ask the cluster whether %s is taken: %w", name, err)
	}
	if spec.Join, err = e.joinFor(ctx, c, spec.Role); err != nil {
		return err
	}
	h, err := e.makeHost(ctx, d, store, spec, stepPrinter(e.stderr, start))
	if err != nil {
		return err
	}
	if _, err := c.PutMachine(ctx, machineRecord(h)); err != nil {
		e.undoHost(d, store, h)
		return fmt.Errorf("record machine %s in the cluster (the host was removed again): %w", name, err)
	}
	fmt.Fprintf(e.stdout, "Created machine %s (%s, %s, driver %s) in cluster %s in %.1fs\n",
		name, h.Role, h.Address, h.Driver, spec.Cluster, time.Since(start).Seconds())
	return nil
}

// joinFor asks the cluster for the token of role and its leader's cluster
// address, as `berth token` does.
func (e *env) joinFor(ctx context.Context, c *api.Client, role machine.Role) (machine.Join, error) {
	toks, err := c.Tokens(ctx)
	if err != nil {
		return machine.Join{}, fmt.Errorf("get a join token from the cluster: %w", err)
	}
	ms, err := c.Members(ctx)
	if err != nil {
		return machine.Join{}, fmt.Errorf("find the cluster's managers: %w", err)
	}
	j := machine.Join{Addr: answeringJoinAddr(ctx, ms), Token: toks.Worker}
	if role == machine.RoleManager {
		j.Token = toks.Manager
	}
	if j.Addr == "" || j.Token == "" {
		return machine.Join{}, errors.New("the cluster gave no cluster address or no join token; is it a cluster made by berth server with TLS?")
	}
	return j, nil
}

// answeringJoinAddr is the cluster address a new host joins through: the
// leader's, as joinAddr, when it takes connections, else the first member
// that does. A leader that just died is still "the leader" in its
// followers' answers for an election timeout, and a node told to join it
// would wait for it in vain.
func answeringJoinAddr(ctx context.Context, ms []api.Member) string {
	first := joinAddr(ms)
	order := []string{first}
	for _, m := range ms {
		if m.ClusterAddr != "" && m.ClusterAddr != first {
			order = append(order, m.ClusterAddr)
		}
	}
	var d net.Dialer
	for _, addr := range order {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			conn.Close()
			return addr
		}
	}
	return first
}

// makeHost reserves the name on this machine, makes the host and stores
// its record; a failure leaves neither host nor record.
func (e *env) makeHost(ctx context.Context, d machine.Driver, store *machine.Store, spec machine.Spec, p machine.Progress) (*machine.Host, error) {
	rsv := &machine.Host{Name: spec.Name, Cluster: spec.Cluster, Driver: d.Name(), Role: spec.Role, Labels: spec.Labels}
	if mk := reservations[d.Name()]; mk != nil {
		r, err := mk(spec)
		if err != nil {
			return nil, err
		}
		rsv = r
	}
	if err := store.Reserve(rsv); err != nil {
		if errors.Is(err, machine.ErrExists) {
			return nil, fmt.Errorf("this machine has a host named %s in cluster %s already; pick another name or remove it with berth machine rm -f %s", spec.Name, spec.Cluster, spec.Name)
		}
		return nil, err
	}
	h, err := d.Create(ctx, spec, p)
	if err != nil {
		_ = store.Delete(spec.Cluster, spec.Name)
		return nil, fmt.Errorf("create machine %s: %w", spec.Name, err)
	}
	if err := store.Put(h); err != nil {
		e.undoHost(d, store, h)
		return nil, err
	}
	return h, nil
}

// undoHost removes a host just made, and its record, on a context of its
// own (the caller's may be the one interrupted).
func (e *env) undoHost(d machine.Driver, store *machine.Store, h *machine.Host) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := d.Remove(ctx, h, true); err != nil {
		fmt.Fprintf(e.stderr, "warning: could not remove host %s again (%v); remove it with berth machine rm -f %s\n", h.Name, err, h.Name)
		return
	}
	_ = store.Delete(h.Cluster, h.Name)
}

// machineRecord is what the cluster records of a host.
func machineRecord(h *machine.Host) api.Machine {
	return api.Machine{Name: h.Name, Driver: h.Driver, Role: string(h.Role), Labels: h.Labels,
		Address: h.Address, DockerHost: h.DockerHost, Created: cmp.Or(h.Created, time.Now().UTC())}
}

func newMachineLsCommand(e *env, cluster *string) *cobra.Command {
	return &cobra.Command{
		Use: "ls [--json]", Short: "List the cluster's machines (STATE: what this machine's driver finds)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return e.machineLs(cmd.Context(), *cluster) },
	}
}

// machineRow is a machine as `machine ls --json` and `inspect` print it.
type machineRow struct {
	api.Machine
	// State is what this machine's driver finds of the host, or "" when
	// it was made on another machine.
	State string `json:"state,omitempty"`
}

func (e *env) machineLs(ctx context.Context, cluster string) error {
	ms, err := e.client().Machines(ctx)
	if err != nil {
		return err
	}
	rows := make([]machineRow, 0, len(ms))
	for _, m := range ms {
		rows = append(rows, machineRow{Machine: m, State: e.hostState(ctx, cluster, m.Name)})
	}
	if e.structured() {
		return writeJSON(e, rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDRIVER\tROLE\tADDRESS\tSTATE\tLABELS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Driver, r.Role, r.Address, cmp.Or(r.State, "-"), labelList(r.Labels))
	}
	return tw.Flush()
}

func labelList(l map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return cmp.Or(strings.Join(parts, ","), "-")
}

// hostState asks the host's driver, when this machine made it.
func (e *env) hostState(ctx context.Context, cluster, name string) string {
	d, h, err := e.localHost(cluster, name)
	if err != nil {
		return ""
	}
	st, err := d.Status(ctx, h)
	if err != nil {
		return "unknown"
	}
	return string(st)
}

// localHost finds the record this machine keeps of a host, and its
// driver.
func (e *env) localHost(cluster, name string) (machine.Driver, *machine.Host, error) {
	store, err := e.machineStore()
	if err != nil {
		return nil, nil, err
	}
	h, err := store.Get(e.machineCluster(cluster), name)
	if errors.Is(err, machine.ErrNotFound) {
		return nil, nil, fmt.Errorf("this machine has no host %s in cluster %s (it was made elsewhere, or pick the cluster with --cluster)", name, e.machineCluster(cluster))
	}
	if err != nil {
		return nil, nil, err
	}
	d, err := machineDrivers(e, h.Driver)
	if err != nil {
		return nil, nil, err
	}
	return d, h, nil
}

func newMachineInspectCommand(e *env, cluster *string) *cobra.Command {
	return &cobra.Command{
		Use: "inspect NAME", Short: "Show a machine in detail (JSON)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := e.client().Machine(cmd.Context(), args[0])
			if errors.Is(err, api.ErrNotFound) {
				return fmt.Errorf("no machine named %s in the cluster; berth machine ls lists them", args[0])
			}
			if err != nil {
				return err
			}
			return renderAs(e.stdout, cmp.Or(e.global.output, outputJSON), []machineRow{{Machine: *m, State: e.hostState(cmd.Context(), *cluster, m.Name)}})
		},
	}
}
