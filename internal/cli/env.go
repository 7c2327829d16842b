package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// env is everything a command touches outside its own flags: where it
// writes, the process environment, and the collaborators that do I/O. Tests
// build one with fakes; Run builds the real one.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	environ        func() []string
	project        projectLoader
	images         imageBuilder
	now            func() time.Time
	// spawn starts a detached local cluster with its data in dir, listening
	// on addr (host:port).
	spawn func(ctx context.Context, e *env, dir, addr string) error
	// defAddr is the manager address used when neither --addr nor
	// BERTH_ADDR names one.
	defAddr string
	// isTTY reports whether w is a terminal (progress redraws, colors).
	isTTY func(w io.Writer) bool
	// termWidth is the width of terminal w in columns (0: unknown).
	termWidth func(w io.Writer) int
	// stallGrace is how long a deploy may stall (see deployStalled).
	stallGrace time.Duration
	// exitWait bounds how long `server stop` waits for the process to go.
	exitWait time.Duration

	// stdin is where a command reads the user's answer (berth rm).
	stdin io.Reader

	global globalOptions
}

const defaultAddr = api.DefaultAddr

const defaultExitWait = 60 * time.Second

func timeNow() time.Time { return time.Now() }

// globalOptions are the persistent flags, valid before or after the verb.
type globalOptions struct {
	addr       string
	files      []string
	project    string
	projectDir string
	profiles   []string
	envFiles   []string
	json       bool
	output     string // -o: json or yaml (output.go)

	// addrExplicit is set once flags are parsed: the user chose the
	// manager (--addr, BERTH_ADDR or a context), so berth never starts one
	// on its own.
	addrExplicit bool
	// contextName is the context the address came from ("" if none),
	// credential what it shows the manager, and clientOpts its TLS and
	// credential as client options.
	contextName string
	credential  string
	clientOpts  []api.ClientOption
}

// noContextAnnotation marks commands that never use the current context:
// those that run or stop a local process at --addr, and the context
// commands themselves (which read the store on their own).
const noContextAnnotation = "berth/no-context"

func (g *globalOptions) register(root *cobra.Command, e *env) {
	f := root.PersistentFlags()
	f.StringVar(&g.addr, "addr", "", "address of a berth manager (default $BERTH_ADDR, else the current context, else "+e.defAddr+")")
	f.StringArrayVarP(&g.files, "file", "f", nil, "Compose file (repeatable; later files override earlier ones)")
	f.StringVarP(&g.project, "project-name", "p", "", "project (app) name (default: from the Compose file or its directory)")
	f.StringVar(&g.projectDir, "project-directory", "", "directory relative paths in the Compose file start from")
	f.StringArrayVar(&g.profiles, "profile", nil, "Compose profile to enable (repeatable)")
	f.StringArrayVar(&g.envFiles, "env-file", nil, "file of environment variables for interpolation (repeatable)")
	f.BoolVar(&g.json, "json", false, "the same as -o json")
	f.StringVarP(&g.output, "output", "o", "", "print data as json or yaml, one document (list and inspect commands)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := g.checkOutput(cmd); err != nil {
			return err
		}
		if err := g.resolveAddr(cmd, e); err != nil {
			return err
		}
		return g.addCredential(e)
	}
}

// resolveAddr applies the precedence --addr, then BERTH_ADDR, then the
// current context, then the default. An explicit address carries no
// credential: it names a manager, not how to prove who you are to it
// (addCredential then finds one).
func (g *globalOptions) resolveAddr(cmd *cobra.Command, e *env) error {
	if cmd.Flags().Changed("addr") {
		g.addrExplicit = true
		return nil
	}
	if v := strings.TrimSpace(e.getenv("BERTH_ADDR")); v != "" {
		g.addr, g.addrExplicit = v, true
		return nil
	}
	g.addr = e.defAddr
	if cmd.Annotations[noContextAnnotation] != "" {
		return nil
	}
	store, err := e.contextStore()
	if err != nil {
		return nil // no home: no contexts either, so the default stands
	}
	file, err := store.load()
	if err != nil || file.Current == "" {
		return err
	}
	c := file.Contexts[file.Current]
	if c == nil {
		return fmt.Errorf("the current context %q is not in %s; pick another with berth context use", file.Current, store.path)
	}
	opts, err := c.clientOptions()
	if err != nil {
		return fmt.Errorf("context %s: %w", file.Current, err)
	}
	g.addr, g.addrExplicit, g.contextName, g.clientOpts = c.Addr, true, file.Current, opts
	g.credential = c.credential()
	return nil
}

// client returns an API client for the chosen manager.
func (e *env) client() *api.Client { return api.NewClient(e.global.addr, e.global.clientOpts...) }

// terminalWidth asks the kernel for the width of terminal w.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
