package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/types"
)

// readyWait bounds the wait, after every host is made, for the cluster to
// see all its managers and agents.
const readyWait = 60 * time.Second

// imageList is the --image ones, each once. No image is copied by
// default: berth up ships what the nodes need through the cluster's
// registry; --image seeds an engine ahead (pull_policy: never images).
func imageList(flags []string) []string {
	var images []string
	for _, img := range flags {
		if !slices.Contains(images, img) {
			images = append(images, img)
		}
	}
	return images
}

// clusterSpec checks create's input before anything is made.
func clusterSpec(name string, o clusterOptions) (machine.ClusterSpec, error) {
	if err := types.CheckMachineName(name); err != nil {
		return machine.ClusterSpec{}, fmt.Errorf("cluster name %w", err)
	}
	if err := checkContextName(name); err != nil {
		return machine.ClusterSpec{}, err
	}
	labels, err := parseMachineLabels(o.labels)
	if err != nil {
		return machine.ClusterSpec{}, err
	}
	if err := server.CheckRegistryGCGrace(o.registryGCGrace); err != nil {
		return machine.ClusterSpec{}, err
	}
	spec := machine.ClusterSpec{Name: name, Managers: o.managers, Agents: o.agents, Images: imageList(o.images), Labels: labels,
		RegistryGCGrace: o.registryGCGrace}
	if o.subnet != "" {
		spec.Options = map[string]string{"subnet": o.subnet}
	}
	return spec, machine.CheckClusterSpec(spec)
}

func (e *env) clusterCreate(ctx context.Context, name string, o clusterOptions) (err error) {
	start := time.Now()
	spec, err := clusterSpec(name, o)
	if err != nil {
		return err
	}
	d, err := machineDrivers(e, "local")
	if err != nil {
		return err
	}
	store, err := e.machineStore()
	if err != nil {
		return err
	}
	cstore, err := e.contextStore()
	if err != nil {
		return err
	}
	if f, err := cstore.load(); err != nil {
		return err
	} else if f.Contexts[name] != nil {
		return fmt.Errorf("a context named %s exists; pick another cluster name or remove the context (berth context rm %s)", name, name)
	}
	rec := machine.Cluster{Name: name, Context: name, Subnet: o.subnet, Driver: d.Name(), Created: start.UTC()}
	if err := store.ReserveCluster(rec); err != nil {
		if errors.Is(err, machine.ErrExists) {
			return fmt.Errorf("a cluster named %s was made on this machine; pick another name or remove it with berth cluster rm %s", name, name)
		}
		return err
	}
	mk := &machine.ClusterMaker{Driver: d, Store: store, Progress: stepPrinter(e.stderr, start),
		Tokens: func(ctx context.Context, first *machine.Host) (machine.Tokens, error) {
			c, err := hostClient(first, first.AdminToken, first.CACert)
			if err != nil {
				return machine.Tokens{}, err
			}
			t, err := c.Tokens(ctx)
			if err != nil {
				return machine.Tokens{}, err
			}
			return machine.Tokens{Worker: t.Worker, Manager: t.Manager}, nil
		}}
	res, err := mk.Create(ctx, spec)
	if err != nil {
		_ = store.DeleteCluster(name)
		return fmt.Errorf("create cluster %s (everything made was removed): %w", name, err)
	}
	// From here on a failure removes the hosts made, with their records.
	defer func() {
		if err != nil {
			e.undoCluster(store, name)
		}
	}()
	if err := e.finishCluster(ctx, name, res, mk.Progress); err != nil {
		return fmt.Errorf("create cluster %s (everything made was removed): %w", name, err)
	}
	e.printCluster(name, res, time.Since(start))
	return nil
}

// finishCluster waits for every node, records the machines in the
// cluster and makes the context, current.
func (e *env) finishCluster(ctx context.Context, name string, res *machine.ClusterResult, step machine.Progress) error {
	first := res.Hosts[0]
	c, err := hostClient(first, res.AdminToken, res.CACert)
	if err != nil {
		return err
	}
	var addrs []string
	for _, h := range res.Hosts {
		if h.Role == machine.RoleManager {
			addrs = append(addrs, net.JoinHostPort(h.Address, strconv.Itoa(machine.APIPort)))
		}
	}
	c.SetAddrs(addrs)
	step(name, "wait for every node")
	if err := waitClusterReady(ctx, c, res.Hosts, readyWait); err != nil {
		return err
	}
	step(name, "record the machines")
	for _, h := range res.Hosts {
		if _, err := c.PutMachine(ctx, machineRecord(h)); err != nil {
			return fmt.Errorf("record machine %s in the cluster: %w", h.Name, err)
		}
	}
	cc := &clusterContext{Addr: "https://" + addrs[0], Fallbacks: addrs[1:], CAPEM: string(res.CACert), Token: res.AdminToken}
	cs, err := e.contextStore()
	if err != nil {
		return err
	}
	return cs.update(func(f *contextFile) error {
		if f.Contexts[name] != nil {
			return fmt.Errorf("a context named %s appeared meanwhile", name)
		}
		f.Contexts[name], f.Current = cc, name
		return nil
	})
}

// hostClient is a client of a manager host's API, trusting the cluster's
// CA and showing the admin token.
func hostClient(h *machine.Host, token string, ca []byte) (*api.Client, error) {
	cc := &clusterContext{Addr: "https://" + net.JoinHostPort(h.Address, strconv.Itoa(machine.APIPort)), CAPEM: string(ca), Token: token}
	opts, err := cc.clientOptions()
	if err != nil {
		return nil, fmt.Errorf("%s: the CA it returned: %w", h.Name, err)
	}
	return api.NewClient(cc.Addr, opts...), nil
}

// waitClusterReady waits until every manager host is a reachable member
// and every agent host a ready node.
func waitClusterReady(ctx context.Context, c *api.Client, hosts []*machine.Host, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	missing := ""
	for {
		missing = clusterMissing(ctx, c, hosts)
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for every node: %s is not ready after %s", missing, limit)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// clusterMissing names a host the cluster does not see ready yet, or "".
func clusterMissing(ctx context.Context, c *api.Client, hosts []*machine.Host) string {
	ms, err := c.Members(ctx)
	if err != nil {
		return "the managers' list"
	}
	ns, err := c.ListNodes(ctx)
	if err != nil {
		return "the nodes' list"
	}
	for _, h := range hosts {
		ok := false
		if h.Role == machine.RoleManager {
			ok = slices.ContainsFunc(ms, func(m api.Member) bool { return m.Name == h.Name && m.Voter && (m.Reachable || m.Leader) })
		} else {
			ok = slices.ContainsFunc(ns, func(n *types.Node) bool { return n.Name == h.Name && n.Status == types.NodeReady })
		}
		if !ok {
			return h.Name
		}
	}
	return ""
}

// undoCluster removes a cluster just made, on a context of its own.
func (e *env) undoCluster(store *machine.Store, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	drivers := func(n string) (machine.Driver, error) { return machineDrivers(e, n) }
	if err := machine.RemoveAll(ctx, drivers, store, name, stepPrinter(e.stderr, time.Now())); err != nil {
		fmt.Fprintf(e.stderr, "warning: %v; remove what is left with berth cluster rm %s\n", err, name)
		return
	}
	// The context is made last, so a failure never follows it: a context
	// of this name is someone else's and stays.
	_ = store.DeleteCluster(name)
}

func (e *env) printCluster(name string, res *machine.ClusterResult, took time.Duration) {
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tADDRESS")
	for _, h := range res.Hosts {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", h.Name, h.Role, h.Address)
	}
	tw.Flush()
	managers := 0
	for _, h := range res.Hosts {
		if h.Role == machine.RoleManager {
			managers++
		}
	}
	fmt.Fprintf(e.stdout, "Cluster %s: %s and %s ready in %.1fs. Context %s is now current.\n",
		name, countOf(managers, "manager", "managers"), countOf(len(res.Hosts)-managers, "agent", "agents"), took.Seconds(), name)
}
