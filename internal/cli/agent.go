package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/agent"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type agentOptions struct {
	join    string
	token   string
	tokFile string
	name    string
	dataDir string
	labels  []string
	listen  string
	drivers []string
	// registryPort is the pull-through endpoint's port on 127.0.0.1.
	registryPort int
	overlay      bool
	// dnsUpstreams (hidden) replace the node's resolv.conf as the agent's
	// DNS upstreams: tests give one of their own on loopback.
	dnsUpstreams []string
}

func newAgentCommand(e *env) *cobra.Command {
	var o agentOptions
	cmd := &cobra.Command{
		Use:   "agent --join ADDR --token TOKEN",
		Short: "Run a node agent that joins a cluster",
		Long: `Run a node agent: it joins the cluster through the manager's cluster port at
--join, heartbeats, and runs the tasks the scheduler places on this node.

On first start it proves the worker token (berth token worker), which also
tells it the fingerprint of the cluster CA, and gets a node certificate; it
keeps the certificate, its node ID and its task state in --data-dir. A
restarted agent needs no token, keeps its node ID and adopts the containers
still running.`,
		Example:     "  berth agent --join 10.0.0.5:7702 --token BERTH-1-...-w-... --label zone=a --listen 10.0.0.7:7710",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{noContextAnnotation: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.agent(cmd.Context(), o)
		},
	}
	hideInheritedFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.join, "join", "", "cluster address (host:port, port 7702 by default) of a manager (required)")
	f.StringVar(&o.token, "token", "", "worker token (berth token worker); needed until the agent has joined once")
	f.StringVar(&o.tokFile, "token-file", "", "file holding the worker token, readable by its owner only (not seen in ps, unlike --token); a missing file is no token")
	f.StringVar(&o.name, "name", "", "node name (default: the hostname)")
	f.StringVar(&o.dataDir, "data-dir", "", "directory of the agent's state (default: $XDG_STATE_HOME/berth/agent)")
	f.StringArrayVar(&o.labels, "label", nil, "node label KEY=VALUE, for placement constraints (repeatable)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:7710", "address of the agent's own API (managers fetch logs there)")
	f.StringSliceVar(&o.drivers, "driver", nil, "drivers to offer: docker, exec (default: exec, plus docker when an engine answers)")
	f.IntVar(&o.registryPort, "registry-port", agent.DefaultRegistryPort,
		"port on 127.0.0.1 where the host's Docker engine pulls the cluster's images through the agent (0: off)")
	f.BoolVar(&o.overlay, "overlay", true,
		"join the cluster overlay: networks span nodes, services have VIPs (false: each network is local to this node's engine, for agents sharing one engine and network namespace)")
	addDNSUpstreamFlag(f, &o.dnsUpstreams)
	_ = cmd.MarkFlagRequired("join")
	return cmd
}

func (e *env) agent(ctx context.Context, o agentOptions) error {
	labels, err := parseLabels(o.labels)
	if err != nil {
		return err
	}
	token, err := joinToken(o.token, o.tokFile)
	if err != nil {
		return err
	}
	if err := checkDNSUpstreams(o.dnsUpstreams); err != nil {
		return err
	}
	if o.registryPort < 0 || o.registryPort > 65535 {
		return fmt.Errorf("invalid --registry-port %d: give a port from 1 to 65535, or 0 to turn the registry endpoint off", o.registryPort)
	}
	registryAddr := ""
	if o.registryPort > 0 {
		registryAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(o.registryPort))
	}
	dataDir := o.dataDir
	if dataDir == "" {
		if dataDir, err = e.stateDir("agent"); err != nil {
			return err
		}
	}
	ag, err := agent.New(agent.Config{
		ManagerAddr: o.join, JoinToken: token, Name: o.name, DataDir: dataDir, ListenAddr: o.listen,
		Labels: labels, Drivers: o.drivers, RegistryAddr: registryAddr, Version: Version(), Overlay: o.overlay,
		DNSUpstreams: o.dnsUpstreams,
		Logger:       slog.New(slog.NewTextHandler(e.stderr, nil)),
	})
	if err != nil {
		return fmt.Errorf("start the agent: %w", err)
	}
	return ag.Run(ctx)
}

// addDNSUpstreamFlag adds the hidden --dns-upstream: the resolvers the
// agent's DNS forwards other names to, instead of the node's resolv.conf.
func addDNSUpstreamFlag(f *pflag.FlagSet, to *[]string) {
	f.StringSliceVar(to, "dns-upstream", nil, "resolvers (IP:PORT) the agent's DNS forwards names that are not berth's to (default: the node's /etc/resolv.conf)")
	_ = f.MarkHidden("dns-upstream")
}

// checkDNSUpstreams refuses an upstream that is not IP:PORT.
func checkDNSUpstreams(ups []string) error {
	for _, u := range ups {
		if _, err := netip.ParseAddrPort(u); err != nil {
			return fmt.Errorf("invalid --dns-upstream %q: give IP:PORT, e.g. 127.0.0.1:5353", u)
		}
	}
	return nil
}

// parseLabels turns KEY=VALUE flags into a map; an error names the bad one.
func parseLabels(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid label %q: want KEY=VALUE, e.g. zone=a", kv)
		}
		m[k] = v
	}
	return m, nil
}

// hideInheritedFlags keeps the global flags (-f, --profile, --addr, ...)
// but those in keep out of cmd's help: they are for commands that talk to
// a manager about a Compose app, and an agent or a manager does neither.
func hideInheritedFlags(cmd *cobra.Command, keep ...string) {
	parentHelp := cmd.HelpFunc()
	cmd.SetHelpFunc(func(c *cobra.Command, args []string) {
		c.InheritedFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !slices.Contains(keep, f.Name) {
				f.Hidden = true
			}
		})
		parentHelp(c, args)
	})
}
