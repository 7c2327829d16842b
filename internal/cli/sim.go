package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/agent"
	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/driver/sim"
	"github.com/berth-dev/berth/internal/types"
)

// maxSimNodes bounds --nodes: each simulated node holds a certificate, a
// connection or two to a manager and a local database.
const maxSimNodes = 20000

type simOptions struct {
	nodes    int
	join     string
	token    string
	tokFile  string
	dataDir  string
	prefix   string
	labels   []string
	listen   string
	cpus     float64
	memory   string
	behave   sim.Behaviour
	parallel int
	joinPar  int
	pollEach time.Duration
	logLevel string
}

func newSimCommand(e *env) *cobra.Command {
	var o simOptions
	cmd := &cobra.Command{
		Use:   "sim --nodes N --join ADDR --token TOKEN",
		Short: "Run N simulated nodes in one process, for scale tests",
		Long: `Run N simulated nodes in one process. Each is a real agent: it joins the
cluster with the worker token through the join API and gets its own node
certificate, heartbeats, follows its tasks with blocking queries and reports
their states in batches, over mutual TLS to the real managers. Only the task
runtime is simulated: the sim driver runs services that set
x-berth-driver: sim, and their tasks "run" after --start-delay, without a
container or a process.

A simulated node offers the capacity the flags give, not the machine's, and
refuses a start past it (or on a host port one of its tasks holds), as a
real node would. What tasks do is set for all nodes by the flags and per
service by deploy labels, which win:
  berth.sim.start_delay: 200ms   how long a start takes
  berth.sim.exit_after: 5s       the task exits by itself after this long
  berth.sim.exit_code: "1"       with this code (0: success)
  berth.sim.fail: "disk full"    every start fails with this message

The nodes are named PREFIX-0001 and up and keep their identities in
--data-dir, so a restarted sim brings back the same nodes. Stopping it (or
killing it) loses the nodes as a lost machine would: the managers mark them
down and place their tasks elsewhere.`,
		Example: "  berth sim --nodes 100 --join 127.0.0.1:7702 --token BERTH-1-...-w-... --cpus 8 --memory 16GiB",
		Args:    cobra.NoArgs,
		// A simulation talks to the cluster port with the worker token, as
		// agents do, not to a context's API.
		Annotations: map[string]string{noContextAnnotation: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.sim(cmd.Context(), o)
		},
	}
	hideInheritedFlags(cmd)
	f := cmd.Flags()
	f.IntVar(&o.nodes, "nodes", 10, fmt.Sprintf("how many simulated nodes to run (1 to %d)", maxSimNodes))
	f.StringVar(&o.join, "join", "", "cluster address (host:port) of a manager (required)")
	f.StringVar(&o.token, "token", "", "worker token (berth token worker); needed until the nodes have joined once")
	f.StringVar(&o.tokFile, "token-file", "", "file holding the worker token, readable by its owner only")
	f.StringVar(&o.dataDir, "data-dir", "", "directory of the nodes' identities and state, one subdirectory each (default: $XDG_STATE_HOME/berth/sim)")
	f.StringVar(&o.prefix, "name-prefix", "sim", "node names are PREFIX-0001, PREFIX-0002, ...; give each sim of a cluster its own")
	f.StringArrayVar(&o.labels, "label", nil, "label KEY=VALUE of every node, for placement constraints (repeatable)")
	f.StringVar(&o.listen, "listen-host", "127.0.0.1", "IP each node's agent API listens on, on a port of its own")
	f.Float64Var(&o.cpus, "cpus", 4, "CPUs each node offers")
	f.StringVar(&o.memory, "memory", "8GiB", "memory each node offers")
	f.DurationVar(&o.behave.StartDelay, "start-delay", 0, "how long a task's start takes")
	f.DurationVar(&o.behave.ExitAfter, "exit-after", 0, "tasks exit by themselves after this long (0: they run until stopped)")
	f.IntVar(&o.behave.ExitCode, "exit-code", 0, "the code tasks exit with after --exit-after")
	f.StringVar(&o.behave.Fail, "fail", "", "every start fails with this message")
	f.IntVar(&o.parallel, "parallel", 8, "tasks each node starts at once")
	f.IntVar(&o.joinPar, "join-parallel", 8, "nodes joining at once (each join makes a key and a certificate)")
	f.DurationVar(&o.pollEach, "poll-every", 0, "how often each node lists its simulated tasks to catch a missed event (default: the agent's 3s)")
	f.StringVar(&o.logLevel, "log-level", "warn", "the nodes' log level: debug, info, warn or error")
	_ = cmd.MarkFlagRequired("join")
	return cmd
}

// simNode is one simulated node: the real agent, with a sim driver.
type simNode struct {
	name  string
	agent *agent.Agent
}

func (e *env) sim(ctx context.Context, o simOptions) error {
	nodes, err := e.buildSimNodes(o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg     sync.WaitGroup
		joined atomic.Int64
	)
	// Joins are paced: each makes a key pair and asks a manager to sign a
	// certificate, and a thousand at once would only queue at the leader.
	// Paced joins also stagger the nodes' heartbeats, which tick from each
	// node's registration.
	slots := make(chan struct{}, o.joinPar)
	for _, n := range nodes {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		done := make(chan struct{})
		wg.Go(func() {
			defer close(done)
			if err := n.agent.Run(ctx); err != nil {
				cancel(fmt.Errorf("simulated node %s: %w", n.name, err))
			}
		})
		wg.Go(func() {
			defer func() { <-slots }()
			if waitJoined(ctx, n.agent, done) {
				if joined.Add(1) == int64(len(nodes)) {
					// The goroutines tell what a simulated node costs
					// (each is a whole agent), for scale runs to report.
					fmt.Fprintf(e.stdout, "%d simulated nodes joined the cluster through %s (%d goroutines)\n", len(nodes), o.join, runtime.NumGoroutine())
				}
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// waitJoined waits until the node has its identity (it has joined, or had
// joined before), its Run ended or ctx is done; it says whether it joined.
func waitJoined(ctx context.Context, a *agent.Agent, done <-chan struct{}) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for a.Addr() == "" {
		select {
		case <-ctx.Done():
			return false
		case <-done:
			return false
		case <-tick.C:
		}
	}
	return true
}

// buildSimNodes checks the options and builds every node's agent; nothing
// runs yet.
func (e *env) buildSimNodes(o simOptions) ([]*simNode, error) {
	if o.nodes < 1 || o.nodes > maxSimNodes {
		return nil, fmt.Errorf("invalid --nodes %d: give 1 to %d", o.nodes, maxSimNodes)
	}
	if o.parallel < 1 || o.parallel > 1000 {
		return nil, fmt.Errorf("invalid --parallel %d: give 1 to 1000", o.parallel)
	}
	if o.joinPar < 1 || o.joinPar > 1000 {
		return nil, fmt.Errorf("invalid --join-parallel %d: give 1 to 1000", o.joinPar)
	}
	if o.prefix == "" || strings.ContainsAny(o.prefix, "/ \t") {
		return nil, fmt.Errorf("invalid --name-prefix %q: give a name without spaces or slashes", o.prefix)
	}
	if o.cpus < 0 || o.cpus > 1e6 || math.IsNaN(o.cpus) {
		return nil, fmt.Errorf("invalid --cpus %v: give 0 to 1000000", o.cpus)
	}
	mem, err := units.RAMInBytes(o.memory)
	if err != nil || mem < 0 {
		return nil, fmt.Errorf("invalid --memory %q: give a size such as 512MiB or 16GiB", o.memory)
	}
	if o.pollEach < 0 {
		return nil, fmt.Errorf("invalid --poll-every %s: give a positive duration", o.pollEach)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: give debug, info, warn or error", o.logLevel)
	}
	labels, err := parseLabels(o.labels)
	if err != nil {
		return nil, err
	}
	token, err := joinToken(o.token, o.tokFile)
	if err != nil {
		return nil, err
	}
	dataDir := o.dataDir
	if dataDir == "" {
		if dataDir, err = e.stateDir("sim"); err != nil {
			return nil, err
		}
	}
	capacity := types.ResourceAmounts{NanoCPUs: int64(o.cpus * 1e9), MemoryBytes: mem}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	nodes := make([]*simNode, o.nodes)
	for i := range nodes {
		name := fmt.Sprintf("%s-%04d", o.prefix, i+1)
		d, err := sim.New(sim.Config{Node: name, Capacity: capacity, Default: o.behave})
		if err != nil {
			return nil, fmt.Errorf("invalid sim flags: %w", err)
		}
		a, err := agent.New(agent.Config{
			ManagerAddr: o.join, JoinToken: token, Name: name, DataDir: filepath.Join(dataDir, name),
			ListenAddr: net.JoinHostPort(o.listen, "0"), Labels: labels, Capacity: &capacity,
			Drivers:         []string{types.DriverSim},
			DriverOverrides: map[string]driver.Driver{types.DriverSim: d},
			Parallel:        o.parallel, Version: Version(), Logger: logger,
			VolatileState: true, // its tasks die with the process anyway
			Timing:        agent.Timing{PollEvery: o.pollEach},
		})
		if err != nil {
			return nil, fmt.Errorf("start simulated node %s: %w", name, err)
		}
		nodes[i] = &simNode{name: name, agent: a}
	}
	return nodes, nil
}
