package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/agent"
	"github.com/berth-dev/berth/internal/credfile"
	"github.com/berth-dev/berth/internal/ipam"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/server"
	"github.com/spf13/cobra"
)

type serverOptions struct {
	dev             bool
	dataDir         string
	name            string
	raftAddr        string
	clusterAddr     string
	join            string
	token           string
	tokenFile       string
	forceNewCluster bool
	secureAPI       bool
	heartbeatTTL    time.Duration
	limits          server.Limits
	certTTL         time.Duration
	adminTokenFile  string
	registryMax     string        // --registry-max-size, as given
	addressPool     string        // --address-pool, as given
	addressSlice    int           // --address-slice, a prefix length; 0: the default
	dnsUpstreams    []string      // the dev agent's (hidden)
	registryGCGrace time.Duration // hidden, for tests
}

func newServerCommand(e *env) *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a manager (with --dev, a whole one-node cluster)",
		Long: `Run a berth manager: the Raft-replicated state, the API, the controllers and
the scheduler. It listens on three ports: the API on --addr (users), Raft on
--raft-addr (managers) and the cluster port on --cluster-addr (agents and
managers, mutual TLS). On the API and cluster ports it also serves the cluster
registry (/v2/), where berth up pushes built and local-only images; its blobs
live in the data directory's registry/, at most --registry-max-size, and every
manager holds a copy of each image.

The first manager bootstraps a new cluster: its CA, join tokens and an admin
token, printed once on stdout (never in the log). Every API request needs a credential, on loopback too;
a dev cluster instead writes its admin token, readable by you only, where
your berth CLI finds it for that address (~/.config/berth/local), making a
fresh one on each start. Further
managers join it with --join and a manager token (berth token manager).
After a permanent loss of quorum, --force-new-cluster turns one surviving
manager's data into a one-manager cluster the others can join again.

With --dev it also runs an agent in the same process, so one command gives a
one-node cluster. Without --data-dir, a dev cluster keeps its data in a
temporary directory removed on exit.`,
		Example: "  berth server --dev\n" +
			"  berth server --addr 10.0.0.5:7700 --data-dir /var/lib/berth --name m1\n" +
			"  berth server --addr 10.0.0.6:7700 --data-dir /var/lib/berth --name m2 --join 10.0.0.5:7702 --token BERTH-1-...-m-...\n" +
			"  berth server --addr 10.0.0.5:7700 --data-dir /var/lib/berth --force-new-cluster",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{noContextAnnotation: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			return e.server(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.dev, "dev", false, "also run an agent in this process (a one-node cluster)")
	f.StringVar(&o.dataDir, "data-dir", "", "directory of the manager's state (default: $XDG_STATE_HOME/berth/server, or a temporary one with --dev)")
	f.StringVar(&o.name, "name", "", "name of this manager (default: the hostname)")
	f.StringVar(&o.raftAddr, "raft-addr", "", "address Raft listens on (default: the API port + 1)")
	f.StringVar(&o.clusterAddr, "cluster-addr", "", "address of the mutual-TLS cluster port for agents and managers (default: the API port + 2)")
	f.StringVar(&o.join, "join", "", "cluster address (host:port) of a manager of the cluster to join")
	f.StringVar(&o.token, "token", "", "manager token to join with (berth token manager); needed with --join")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the manager token, readable by its owner only (not seen in ps, unlike --token); a missing file is no token")
	f.BoolVar(&o.forceNewCluster, "force-new-cluster", false, "turn this manager's data into a one-manager cluster (after a permanent loss of quorum)")
	f.BoolVar(&o.secureAPI, "secure-api", false, "serve the API with TLS and require credentials even on a loopback address")
	f.DurationVar(&o.heartbeatTTL, "heartbeat-ttl", 0, "how long a node may miss heartbeats before it is marked down (default "+server.DefaultHeartbeatTTL.String()+"; longer past 500 nodes, 3s per 100)")
	addLimitFlags(cmd, &o.limits)
	f.DurationVar(&o.certTTL, "cert-ttl", 0, "lifetime of the node certificates this manager signs; nodes renew them when a third is left (default 2160h, 90 days)")
	f.StringVar(&o.registryMax, "registry-max-size", "10GiB", "most the cluster registry may hold on this manager (images pushed by berth up); a push past it is refused")
	f.StringVar(&o.addressPool, "address-pool", "", "a new cluster's overlay address pool (default "+ipam.DefaultPool.String()+"): each network starts as a /20 of it and grows to at most half of it; it must overlap none of the hosts' own routes")
	d := ipam.DefaultConfig()
	f.IntVar(&o.addressSlice, "address-slice", 0, fmt.Sprintf("a new cluster's slice size, a prefix length, for the nodes a network gets past its first %d (default %d: %d containers a node and network, %d nodes a network at most; those first %d get a /%d, %d containers); %d or shorter: every slice that size (%d: a network spans at most %d nodes)",
		d.Limits().WideNodes, d.SmallSliceBits, d.Limits().AddrsPerSmallSlice, d.Limits().MaxNodesPerNetwork, d.Limits().WideNodes, d.SliceBits, d.Limits().AddrsPerSlice,
		d.SliceBits, d.SliceBits, d.WithSlice(d.SliceBits).Limits().MaxNodesPerNetwork))
	f.StringVar(&o.adminTokenFile, "admin-token-file", "", "write a new cluster's admin token to this file (mode 0600) instead of stdout")
	_ = f.MarkHidden("admin-token-file")
	addDNSUpstreamFlag(f, &o.dnsUpstreams)
	f.DurationVar(&o.registryGCGrace, "registry-gc-grace", server.DefaultRegistryGCGrace, "how long an image no service needs and an unreferenced blob are kept before GC removes them (for tests)")
	_ = f.MarkHidden("registry-gc-grace")
	hideInheritedFlags(cmd, "addr") // --addr is where the manager listens
	cmd.AddCommand(newServerStopCommand(e), newServerMembersCommand(e))
	return cmd
}

// check refuses flag combinations that cannot mean anything.
func (o serverOptions) check() error {
	switch {
	case (o.token != "" || o.tokenFile != "") && o.join == "":
		return errors.New("--token is the manager token for --join (and so is --token-file); give the address of a manager to join with --join")
	case o.join != "" && o.forceNewCluster:
		return errors.New("--force-new-cluster starts a cluster from this manager's data and --join joins another; pick one")
	case o.forceNewCluster && o.dev && o.dataDir == "":
		return errors.New("--force-new-cluster needs the --data-dir of a manager to recover")
	case o.heartbeatTTL < 0:
		return errors.New("--heartbeat-ttl must be positive, e.g. 15s")
	case o.certTTL != 0 && (o.certTTL < server.MinCertTTL || o.certTTL > pki.MaxCertTTL):
		return fmt.Errorf("--cert-ttl must be between %s and %d days, e.g. 2160h for 90 days", server.MinCertTTL, pki.MaxCertTTL/(24*time.Hour))
	}
	if err := server.CheckRegistryGCGrace(o.registryGCGrace); err != nil {
		return err
	}
	if _, err := o.registryMaxBytes(); err != nil {
		return err
	}
	if _, err := o.pool(); err != nil {
		return err
	}
	return o.checkLimits()
}

// pool reads --address-pool (the zero prefix when not given) and checks
// it with --address-slice.
func (o serverOptions) pool() (netip.Prefix, error) {
	var p netip.Prefix
	if o.addressPool != "" {
		var err error
		if p, err = netip.ParsePrefix(o.addressPool); err != nil {
			return netip.Prefix{}, fmt.Errorf("--address-pool: %w", err)
		}
	}
	if err := ipam.PlanFor(p, o.addressSlice).Validate(); err != nil {
		if o.addressSlice != 0 {
			return netip.Prefix{}, fmt.Errorf("--address-slice %d with the pool %s: %w", o.addressSlice, ipam.PlanFor(p, 0).Pool, err)
		}
		return netip.Prefix{}, fmt.Errorf("--address-pool: %w", err)
	}
	return p, nil
}

// registryMaxBytes reads --registry-max-size (0 when not given: the
// default).
func (o serverOptions) registryMaxBytes() (int64, error) {
	if o.registryMax == "" {
		return 0, nil
	}
	n, err := registry.ParseSize(o.registryMax)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("--registry-max-size must be a size such as 10GiB or 500MiB, not %q", o.registryMax)
	}
	return n, nil
}

// addLimitFlags binds the flags that bound the work a submit may ask for.
func addLimitFlags(cmd *cobra.Command, l *server.Limits) {
	*l = server.DefaultLimits()
	f := cmd.Flags()
	f.IntVar(&l.TasksPerApp, server.FlagTasksPerApp, l.TasksPerApp, "most tasks one app may run (replicas of all its services)")
	f.IntVar(&l.TasksPerCluster, server.FlagTasksPerCluster, l.TasksPerCluster, "most tasks all apps together may run")
	f.IntVar(&l.ServicesPerApp, server.FlagServicesPerApp, l.ServicesPerApp, "most services one app may have")
	f.IntVar(&l.ReplicasPerService, server.FlagReplicasPerService, l.ReplicasPerService, "most replicas one service may have")
}

// checkLimits refuses negative limits (zero takes the default).
func (o serverOptions) checkLimits() error {
	for flag, v := range map[string]int{
		server.FlagTasksPerApp: o.limits.TasksPerApp, server.FlagTasksPerCluster: o.limits.TasksPerCluster,
		server.FlagServicesPerApp: o.limits.ServicesPerApp, server.FlagReplicasPerService: o.limits.ReplicasPerService,
	} {
		if v < 0 {
			return fmt.Errorf("--%s must be a positive number, not %d", flag, v)
		}
	}
	return nil
}

// adminTokenNotice is what a new cluster prints about its admin token. A
// context with --ca and --token is for a secured (https) API; an open
// loopback API takes the CLI on this machine with no context at all.
func adminTokenNotice(token, apiURL, caPath string) string {
	notice := "Created a new cluster. Its admin token, shown only now (keep it safe):\n\n    " + token + "\n\n"
	if strings.HasPrefix(apiURL, "https://") {
		return notice + fmt.Sprintf("Use it with: berth context create NAME --addr %s --ca %s --token <admin token>\n", apiURL, caPath)
	}
	// Loopback may stay plain HTTP, but it still needs the token.
	return notice + fmt.Sprintf("The API at %s is plain HTTP on loopback. Use it with: BERTH_TOKEN=<admin token> berth --addr %s ...\n", apiURL, apiURL)
}

func (e *env) server(ctx context.Context, o serverOptions) error {
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	listen, err := listenAddr(e.global.addr)
	if err != nil {
		return err
	}
	dataDir, cleanup, err := e.serverDataDir(o)
	if err != nil {
		return err
	}
	defer cleanup()
	serverDir := dataDir
	if o.dev {
		serverDir = filepath.Join(dataDir, "server")
	}
	token, err := joinToken(o.token, o.tokenFile)
	if err != nil {
		return err
	}
	registryMax, err := o.registryMaxBytes()
	if err != nil {
		return err
	}
	if err := checkDNSUpstreams(o.dnsUpstreams); err != nil {
		return err
	}
	pool, err := o.pool()
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		Name: o.name, DataDir: serverDir, HTTPAddr: listen, RaftAddr: o.raftAddr, ClusterAddr: o.clusterAddr,
		Join: o.join, JoinToken: token, ForceNewCluster: o.forceNewCluster,
		SecureAPI: o.secureAPI, HeartbeatTTL: o.heartbeatTTL, Limits: o.limits, CertTTL: o.certTTL, Dev: o.dev, Version: Version(), Logger: log,
		RegistryMaxBytes: registryMax, AddressPool: pool, AddressSlice: o.addressSlice, RegistryGCGrace: o.registryGCGrace,
	})
	if err != nil {
		return fmt.Errorf("start the manager: %w", err)
	}
	if tok := srv.AdminToken(); tok != "" && !o.dev && o.adminTokenFile != "" {
		// A supervised manager's stdout is a log file on disk: the token
		// goes to a file only its owner reads, for the machine driver.
		if err := os.WriteFile(o.adminTokenFile, []byte(tok+"\n"), 0o600); err != nil {
			return fmt.Errorf("write the admin token to --admin-token-file: %w", err)
		}
	} else if tok != "" && !o.dev {
		// Shown once, on stdout rather than in the log; the cluster keeps
		// only its hash.
		fmt.Fprint(e.stdout, adminTokenNotice(tok, srv.APIURL(), filepath.Join(serverDir, "pki", "ca.crt")))
	}
	if o.dev {
		// Before the API serves: whoever waits for this cluster must not
		// find the token of an earlier run, which works until the new one
		// replaces it.
		if err := credfile.Remove(e.getenv, srv.Addr()); err != nil {
			fmt.Fprintf(e.stderr, "warning: %v\n", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- srv.Run(ctx) }()
	if !o.dev {
		return waitAll(cancel, done, 1)
	}
	tok, err := e.saveDevCredential(ctx, srv)
	if err != nil {
		cancel()
		if serr := waitAll(cancel, done, 1); serr != nil {
			return serr
		}
		return err
	}
	// A stopped dev cluster's token is good for nothing: leave none behind.
	defer e.dropDevCredential(srv.Addr(), tok)
	if err := e.runDevAgent(ctx, srv, o, dataDir, log, done); err != nil {
		cancel()
		// The manager's own failure, if any, is the cause worth showing.
		if serr := waitAll(cancel, done, 1); serr != nil || errors.Is(err, context.Canceled) {
			return serr
		}
		return err
	}
	return waitAll(cancel, done, 2)
}

// runDevAgent starts the dev cluster's agent once the manager has a worker
// token: it joins through the cluster port like any other agent. Its
// result goes to done. A manager that stops first is reported as is.
func (e *env) runDevAgent(ctx context.Context, srv *server.Server, o serverOptions, dataDir string, log *slog.Logger, done chan error) error {
	token, err := waitWorkerToken(ctx, srv, done)
	if err != nil {
		return err
	}
	ag, err := agent.New(agent.Config{
		ManagerAddr: srv.ClusterAddr(), JoinToken: token, Name: o.name, DataDir: filepath.Join(dataDir, "agent"),
		ListenAddr: "127.0.0.1:0", Version: Version(), Logger: log, Overlay: true, DNSUpstreams: o.dnsUpstreams,
	})
	if err != nil {
		return fmt.Errorf("start the dev cluster's agent: %w", err)
	}
	go func() { done <- ag.Run(ctx) }()
	return nil
}

// devTokenTimeout bounds the wait for a new dev cluster to bootstrap.
const devTokenTimeout = time.Minute

// waitWorkerToken waits until the manager has bootstrapped (its worker
// token exists). The server has no event for it, so it polls; should the
// server stop meanwhile, its result is put back on done for waitAll.
func waitWorkerToken(ctx context.Context, srv *server.Server, done chan error) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, devTokenTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if tok := srv.WorkerToken(); tok != "" {
			return tok, nil
		}
		select {
		case err := <-done:
			done <- err
			return "", errors.New("the manager stopped before the dev cluster's agent could join")
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return "", fmt.Errorf("the manager has no worker token %s after starting; see its log above", devTokenTimeout)
			}
			return "", ctx.Err()
		case <-tick.C:
		}
	}
}

// waitAll waits for n components reporting on done. The first to stop
// (the signal, or a failure) stops the others; the first error is returned.
func waitAll(cancel context.CancelFunc, done <-chan error, n int) error {
	var first error
	for range n {
		err := <-done
		cancel()
		if first == nil && err != nil && !errors.Is(err, context.Canceled) {
			first = err
		}
	}
	return first
}

// serverDataDir picks the data directory; a dev cluster without one gets a
// temporary directory that cleanup removes.
func (e *env) serverDataDir(o serverOptions) (dir string, cleanup func(), err error) {
	nothing := func() {}
	switch {
	case o.dataDir != "":
		return o.dataDir, nothing, nil
	case o.dev:
		dir, err := os.MkdirTemp("", "berth-dev-")
		if err != nil {
			return "", nil, fmt.Errorf("create a temporary data directory: %w", err)
		}
		return dir, func() { os.RemoveAll(dir) }, nil
	}
	dir, err = e.stateDir("server")
	return dir, nothing, err
}
