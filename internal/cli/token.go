package cli

import (
	"cmp"
	"context"
	"fmt"

	"github.com/berth-dev/berth/api"
	"github.com/spf13/cobra"
)

type tokenOptions struct {
	rotate bool
	quiet  bool
}

func newTokenCommand(e *env) *cobra.Command {
	var o tokenOptions
	cmd := &cobra.Command{
		Use:   "token worker|manager",
		Short: "Print (or rotate) the token that lets a node join the cluster",
		Long: `Print the join token for agents (worker) or managers (manager), with the
command to run on the new host. A token carries the fingerprint of the
cluster CA, so the joining node can trust the manager before it has a
certificate. --rotate replaces the token: the old one stops working at once
(nodes that already joined keep their certificates).`,
		Example:   "  berth token worker\n  berth token manager --rotate\n  berth token worker -q",
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"worker", "manager"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.token(cmd.Context(), args[0], o)
		},
	}
	cmd.Flags().BoolVar(&o.rotate, "rotate", false, "replace the token; the old one stops working")
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "print only the token")
	return cmd
}

func (e *env) token(ctx context.Context, role string, o tokenOptions) error {
	c := e.client()
	var (
		toks *api.Tokens
		err  error
	)
	if o.rotate {
		toks, err = c.RotateToken(ctx, role)
	} else {
		toks, err = c.Tokens(ctx)
	}
	if err != nil {
		return err
	}
	tok := toks.Worker
	if role == "manager" {
		tok = toks.Manager
	}
	if tok == "" {
		return fmt.Errorf("the manager at %s returned no %s token", e.global.addr, role)
	}
	if o.quiet {
		fmt.Fprintln(e.stdout, tok)
		return nil
	}
	if o.rotate {
		fmt.Fprintf(e.stdout, "Rotated the %s token; the old one no longer works.\n", role)
	}
	e.printJoinHint(ctx, c, role, tok)
	return nil
}

// printJoinHint prints the command that joins a new host, with the
// leader's cluster address when the manager tells it. The token is what
// was asked for, so failing to learn the address only leaves a placeholder.
func (e *env) printJoinHint(ctx context.Context, c *api.Client, role, tok string) {
	join := "MANAGER:7702"
	if ms, err := c.Members(ctx); err == nil {
		join = cmp.Or(joinAddr(ms), join)
	}
	if role == "manager" {
		fmt.Fprintf(e.stdout, "To add a manager to this cluster, run on the new host:\n\n"+
			"    berth server --join %s --token %s \\\n        --addr HOST:7700 --data-dir /var/lib/berth\n\n"+
			"Keep an odd number of managers (3 or 5).\n", join, tok)
		return
	}
	fmt.Fprintf(e.stdout, "To add a worker to this cluster, run on the new host:\n\n"+
		"    berth agent --join %s --token %s\n", join, tok)
}

// joinAddr is the cluster address to join through: the leader's, else
// the first manager's that has one.
func joinAddr(ms []api.Member) string {
	first := ""
	for _, m := range ms {
		if m.Leader && m.ClusterAddr != "" {
			return m.ClusterAddr
		}
		first = cmp.Or(first, m.ClusterAddr)
	}
	return first
}
