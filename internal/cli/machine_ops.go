package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/types"
)

// exitCodeError carries the exit code of a command berth ran for the user
// (`machine ssh`): it becomes berth's own, with nothing printed.
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

func newMachineSSHCommand(e *env, cluster *string) *cobra.Command {
	return &cobra.Command{
		Use:   "ssh NAME [-- CMD...]",
		Short: "Run a command (default: a shell) inside a host; its exit code is berth's",
		Long: `Run a command inside a host made on this machine: for a local host inside its
network namespace, with the host's engine as DOCKER_HOST; for an ssh host over
SSH.`,
		Example: "  berth machine ssh a1\n  berth machine ssh a1 -- docker ps",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, h, err := e.localHost(*cluster, args[0])
			if err != nil {
				return err
			}
			argv := args[1:]
			if len(argv) == 0 {
				argv = []string{"/bin/sh"}
			}
			code, err := d.Exec(cmd.Context(), h, argv, machine.Stdio{In: os.Stdin, Out: e.stdout, Err: e.stderr})
			if err != nil {
				return fmt.Errorf("run %s in %s: %w", argv[0], h.Name, err)
			}
			if code != 0 {
				return &exitCodeError{code: code}
			}
			return nil
		},
	}
}

func newMachineStateCommand(e *env, cluster *string, verb, short string) *cobra.Command {
	return &cobra.Command{
		Use: verb + " NAME", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, h, err := e.localHost(*cluster, args[0])
			if err != nil {
				return err
			}
			start := time.Now()
			op := d.Start
			if verb == "stop" {
				op = d.Stop
			}
			if err := op(cmd.Context(), h); err != nil {
				return fmt.Errorf("%s machine %s: %w", verb, h.Name, err)
			}
			fmt.Fprintf(e.stdout, "%s: %s (%.1fs)\n", h.Name, map[string]string{"stop": "stopped", "start": "started"}[verb], time.Since(start).Seconds())
			return nil
		},
	}
}

func newMachineRmCommand(e *env, cluster *string) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [-f] NAME",
		Short: "Drain a host's node, remove it from the cluster and tear the host down",
		Long: `Drain the host's node and wait for its tasks to move, remove it from the
cluster (a manager leaves the Raft group), tear the host down and delete its
records. -f goes on past what fails (a cluster that does not answer, a host
half made or half gone).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && forceShort(cmd) != "" {
				return nil
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if name := forceShort(cmd); name != "" && len(args) == 0 {
				return e.machineRm(cmd.Context(), *cluster, name, true)
			}
			return e.machineRm(cmd.Context(), *cluster, args[0], force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "go on past the steps that fail (-f for short)")
	return cmd
}

// forceShort reads `machine rm -f NAME`: -f is the root's --file
// shorthand, which cobra lets no subcommand redefine, so it arrives as
// --file NAME. Compose files mean nothing to machine rm, so -f there can
// only be force.
func forceShort(cmd *cobra.Command) string {
	f := cmd.Flag("file")
	if f == nil || !f.Changed {
		return ""
	}
	vals, _ := cmd.Flags().GetStringArray("file")
	if len(vals) != 1 {
		return ""
	}
	return vals[0]
}

// drainWait bounds how long `machine rm` waits for a node's tasks to move.
const drainWait = 2 * time.Minute

func (e *env) machineRm(ctx context.Context, cluster, name string, force bool) error {
	start := time.Now()
	step := stepPrinter(e.stderr, start)
	d, h, err := e.localHost(cluster, name)
	if err != nil {
		return err
	}
	store, err := e.machineStore()
	if err != nil {
		return err
	}
	c := e.client()
	// soft makes a cluster step a warning under -f.
	soft := func(err error) error {
		if err != nil && force {
			fmt.Fprintf(e.stderr, "warning: %v; going on (-f)\n", err)
			return nil
		}
		return err
	}
	if err := soft(e.leaveCluster(ctx, c, d, h, step)); err != nil {
		return fmt.Errorf("%w (berth machine rm -f %s goes on without the cluster)", err, name)
	}
	c = e.client() // leaveCluster may have moved off a manager that left
	step(name, "tear down")
	if err := d.Remove(ctx, h, force); err != nil && !errors.Is(err, machine.ErrNotFound) {
		return fmt.Errorf("tear down machine %s: %w", name, err)
	}
	if h.Role == machine.RoleAgent {
		step(name, "remove node")
		if err := c.RemoveNode(ctx, name, true); err != nil && !errors.Is(err, api.ErrNotFound) {
			if err := soft(fmt.Errorf("remove node %s from the cluster: %w", name, err)); err != nil {
				return err
			}
		}
	}
	if err := c.DeleteMachine(ctx, name); err != nil && !errors.Is(err, api.ErrNotFound) {
		if err := soft(fmt.Errorf("delete the cluster's record of %s: %w", name, err)); err != nil {
			return err
		}
	}
	if err := store.Delete(h.Cluster, name); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Removed machine %s in %.1fs\n", name, time.Since(start).Seconds())
	return nil
}

// leaveCluster takes a host out of its cluster before it is torn down: an
// agent's node is drained and its tasks move; a manager leaves the Raft
// group.
func (e *env) leaveCluster(ctx context.Context, c *api.Client, d machine.Driver, h *machine.Host, step machine.Progress) error {
	if h.Role == machine.RoleManager {
		step(h.Name, "leave the managers")
		ms, err := c.Members(ctx)
		if err != nil {
			return fmt.Errorf("list the cluster's managers: %w", err)
		}
		other, id, leader := "", "", false
		for _, m := range ms {
			if m.Name == h.Name {
				id, leader = m.ID, m.Leader
			} else {
				other = cmp.Or(other, m.APIAddr)
			}
		}
		if id == "" {
			return nil // not a member (any more)
		}
		if other == "" {
			return fmt.Errorf("%s is the cluster's last manager: remove the cluster instead (berth cluster rm)", h.Name)
		}
		if leader {
			// A leader does not remove itself, and berth has no leadership
			// transfer: stop it, and the others elect one of them.
			step(h.Name, "stop the leader")
			if err := d.Stop(ctx, h); err != nil {
				return fmt.Errorf("stop manager %s: %w", h.Name, err)
			}
		}
		if err := e.removeMember(ctx, e.otherManager(other), id); err != nil {
			return fmt.Errorf("remove manager %s from the cluster: %w", h.Name, err)
		}
		if u, err := url.Parse(e.global.addr); err == nil && u.Hostname() == h.Address {
			e.global.addr = e.otherManager(other) // the rest of rm talks to a manager that stays
		}
		return e.repointContext(h.Address, other)
	}
	step(h.Name, "drain")
	n, err := c.SetNodeAvailability(ctx, h.Name, types.AvailabilityDrain)
	if errors.Is(err, api.ErrNotFound) {
		return nil // never joined, or removed already: nothing to move
	}
	if err != nil {
		return fmt.Errorf("drain node %s: %w", h.Name, err)
	}
	step(h.Name, "wait for its tasks to move")
	return waitNodeEmpty(ctx, c, n.ID, drainWait)
}

// removeMember asks the manager at addr to remove member id, until a
// leader answers (one is being elected when the old one was stopped).
func (e *env) removeMember(ctx context.Context, addr, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	oc := api.NewClient(addr, e.global.clientOpts...)
	for {
		err := oc.RemoveMember(ctx, id)
		var ae *api.Error
		if err == nil || !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// otherManager is the URL of another manager's API at hostport, in the
// scheme the CLI uses now.
func (e *env) otherManager(hostport string) string {
	scheme := "https://"
	if strings.HasPrefix(e.global.addr, "http://") {
		scheme = "http://"
	}
	return scheme + hostport
}

// repointContext moves the current context off a manager that leaves
// (its address is gone with it) to another one, at addr "host:port".
func (e *env) repointContext(leaving, addr string) error {
	if e.global.contextName == "" || addr == "" {
		return nil
	}
	cs, err := e.contextStore()
	if err != nil {
		return err
	}
	return cs.update(func(f *contextFile) error {
		cc := f.Contexts[e.global.contextName]
		if cc == nil {
			return nil
		}
		cc.Fallbacks = slices.DeleteFunc(cc.Fallbacks, func(hp string) bool {
			h, _, err := net.SplitHostPort(hp)
			return err == nil && h == leaving
		})
		u, err := url.Parse(cc.Addr)
		if err != nil || u.Hostname() != leaving {
			return nil
		}
		cc.Fallbacks = slices.DeleteFunc(cc.Fallbacks, func(hp string) bool { return hp == addr })
		u.Host = addr
		cc.Addr = u.String()
		fmt.Fprintf(e.stderr, "Context %s now talks to %s\n", e.global.contextName, cc.Addr)
		return nil
	})
}

// waitNodeEmpty waits until no unfinished task is on the node.
func waitNodeEmpty(ctx context.Context, c *api.Client, nodeID string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var idx uint64
	for {
		tasks, meta, err := c.ListTasks(ctx, api.TaskQuery{Node: nodeID, QueryOptions: api.QueryOptions{Index: idx, Wait: 5 * time.Second}})
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("the tasks of node %s did not move within %s", nodeID, limit)
			}
			return fmt.Errorf("list the tasks of node %s: %w", nodeID, err)
		}
		left := 0
		for _, t := range tasks {
			if !t.State.Terminal() {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		// pace, not idx = meta.Index: an answer that did not move the
		// index would make this loop spin.
		if err := pace(ctx, &idx, meta.Index); err != nil {
			return fmt.Errorf("the tasks of node %s did not move within %s", nodeID, limit)
		}
	}
}
