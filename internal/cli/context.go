package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// newContextCommand groups the context commands. A context names a
// cluster's API address with the CA and credential that reach it, as
// docker and kubectl contexts do.
func newContextCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "context",
		Short: "Manage contexts: which cluster the CLI talks to, and with what credential",
		Long: `A context holds a manager's API address, the cluster CA that signed its
certificate, and a credential (an admin token, or a client certificate and
key). Commands use the current context unless --addr or BERTH_ADDR names a
manager. Without a context, the CLI sends BERTH_TOKEN, or for a loopback
address the token a local (dev) cluster of yours left for it. Contexts are kept in $XDG_CONFIG_HOME/berth/contexts.json (else
~/.config/berth/contexts.json), readable only by you.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{noContextAnnotation: "true"},
		RunE:        func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newContextCreateCommand(e), newContextUseCommand(e), newContextLsCommand(e),
		newContextRmCommand(e), newContextShowCommand(e))
	for _, c := range cmd.Commands() {
		c.Annotations = map[string]string{noContextAnnotation: "true"}
	}
	return cmd
}

func newContextCreateCommand(e *env) *cobra.Command {
	var in contextInput
	cmd := &cobra.Command{
		Use:   "create NAME --addr URL [--ca FILE] [--token TOKEN | --cert FILE --key FILE]",
		Short: "Create a context (it does not become the current one)",
		Long: `Create a context. The CA, certificate and key files are copied into the
context, so it keeps working if they move. A context with a CA verifies the
manager's certificate against it (by the name berth-manager, which every
manager certificate carries, so any of the manager's addresses works).`,
		Example: "  berth context create prod --addr https://10.0.0.5:7700 --ca ca.crt --token BERTHADM-...\n" +
			"  berth context create prod --addr https://10.0.0.5:7700 --ca ca.crt --cert admin.crt --key admin.key",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("addr") {
				in.addr = e.global.addr
			}
			return e.contextCreate(args[0], in)
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.caFile, "ca", "", "the cluster CA certificate (PEM), e.g. a manager's DATA_DIR/pki/ca.crt")
	f.StringVar(&in.token, "token", "", "admin token (printed once when the first manager started)")
	f.StringVar(&in.certFile, "cert", "", "client certificate (PEM) issued by the cluster CA with role admin")
	f.StringVar(&in.keyFile, "key", "", "the client certificate's private key (PEM)")
	return cmd
}

func (e *env) contextCreate(name string, in contextInput) error {
	if err := checkContextName(name); err != nil {
		return err
	}
	c, err := newClusterContext(in)
	if err != nil {
		return err
	}
	store, err := e.contextStore()
	if err != nil {
		return err
	}
	err = store.update(func(f *contextFile) error {
		if f.Contexts[name] != nil {
			return fmt.Errorf("context %s exists; remove it first with berth context rm %s", name, name)
		}
		f.Contexts[name] = c
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Created context %s (%s); switch to it with: berth context use %s\n", name, c.Addr, name)
	return nil
}

func newContextUseCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "use NAME",
		Short:   "Make a context the current one (default: none, the local address)",
		Example: "  berth context use prod\n  berth context use default",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.contextUse(args[0])
		},
	}
}

func (e *env) contextUse(name string) error {
	store, err := e.contextStore()
	if err != nil {
		return err
	}
	err = store.update(func(f *contextFile) error {
		if name == defaultContextName {
			f.Current = ""
			return nil
		}
		if f.Contexts[name] == nil {
			return fmt.Errorf("no context named %s; berth context ls lists them", name)
		}
		f.Current = name
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Current context is now %s\n", name)
	e.warnOverridden(name)
	return nil
}

// warnOverridden tells the user when BERTH_ADDR takes precedence over the
// context they chose, which would otherwise be silently ignored.
func (e *env) warnOverridden(name string) {
	if v := e.getenv("BERTH_ADDR"); v != "" {
		fmt.Fprintf(e.stderr, "warning: BERTH_ADDR is set (%s): commands talk to it, not to context %s, until you unset it\n", v, name)
	}
}

func newContextLsCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the contexts; the current one is marked with *",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return e.contextLs() },
	}
}

// contextRow is one context as `context ls --json` prints it.
type contextRow struct {
	Name       string `json:"name"`
	Addr       string `json:"addr"`
	Credential string `json:"credential"`
	Current    bool   `json:"current"`
}

func (e *env) contextLs() error {
	store, err := e.contextStore()
	if err != nil {
		return err
	}
	f, err := store.load()
	if err != nil {
		return err
	}
	// The no-context row shows the token a local cluster left, if any.
	defCred := "none"
	if tok, _ := e.localCredential(e.defAddr); tok != "" {
		defCred = "local token"
	}
	rows := []contextRow{{Name: defaultContextName, Addr: e.defAddr, Credential: defCred, Current: f.Current == ""}}
	for _, n := range f.names() {
		c := f.Contexts[n]
		rows = append(rows, contextRow{Name: n, Addr: c.Addr, Credential: c.credential(), Current: n == f.Current})
	}
	if e.structured() {
		return writeJSON(e, rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDR\tCREDENTIAL")
	for _, r := range rows {
		name := r.Name
		if r.Current {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, r.Addr, r.Credential)
	}
	return tw.Flush()
}

func newContextRmCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove contexts (removing the current one makes none current)",
		Args:  cobra.MinimumNArgs(1),
		RunE:  func(_ *cobra.Command, args []string) error { return e.contextRm(args) },
	}
}

func (e *env) contextRm(names []string) error {
	store, err := e.contextStore()
	if err != nil {
		return err
	}
	wasCurrent := false
	err = store.update(func(f *contextFile) error {
		for _, n := range names {
			if f.Contexts[n] == nil {
				return fmt.Errorf("no context named %s; nothing was removed", n)
			}
		}
		for _, n := range names {
			delete(f.Contexts, n)
			if f.Current == n {
				f.Current, wasCurrent = "", true
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintf(e.stdout, "Removed context %s\n", n)
	}
	if wasCurrent {
		fmt.Fprintf(e.stdout, "No context is current now; commands use %s\n", e.defAddr)
	}
	return nil
}

func newContextShowCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print the name of the current context",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return e.contextShow() },
	}
}

func (e *env) contextShow() error {
	store, err := e.contextStore()
	if err != nil {
		return err
	}
	f, err := store.load()
	if err != nil {
		return err
	}
	name := f.Current
	if name == "" {
		name = defaultContextName
	}
	fmt.Fprintln(e.stdout, name)
	e.warnOverridden(name)
	return nil
}
