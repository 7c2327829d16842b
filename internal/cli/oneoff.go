package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/mattn/go-shellwords"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

type runOptions struct {
	rm           bool
	noDeps       bool
	detach       bool
	noTTY        bool
	servicePorts bool
	interactive  bool
	env          []string
	publish      []string
	name         string
	user         string
	workdir      string
	entrypoint   string
}

func newRunCommand(e *env) *cobra.Command {
	o := runOptions{interactive: true}
	cmd := &cobra.Command{
		Use:   "run [--rm] [-e K=V] [-p PORTS] [--no-deps] [-d] [--name N] [-u USER] [-w DIR] [--entrypoint E] [-T] SERVICE [CMD...]",
		Short: "Run a one-off task of a service, on whichever node the scheduler picks",
		Long: `Run a one-off task of a service, as docker compose run does, on the cluster:
the service's spec as berth up resolves it (images built and pushed as up
does), with CMD instead of its command, placed by the scheduler on any node.
The service's dependencies are started first, as berth up SERVICE would
(--no-deps: not). The one-off publishes none of the service's ports unless
--service-ports, only those -p gives; it never restarts.

berth run stays attached through the manager: the task's output comes back
from its node, stdin goes to it (when stdin is a terminal or a pipe; -T: no
terminal), and its exit code is berth's. The one-off is named
PROJECT-SERVICE-run-HEX-1 (HEX twelve random hex digits; --name N makes it
PROJECT-N-1). After it exited it stays, listed by berth ps -a, until berth
rm or berth down; --rm removes it (task, container and record) at once.
berth up never takes one-offs for orphans.

Ctrl-C while attached leaves the one-off running in the cluster; with --rm
it stops and removes it, as Compose stops the container.`,
		Example: "  berth run --rm web sh -c 'echo hi'\n  berth run -e DEBUG=1 -p 8080:80 web\n" +
			"  berth run --rm --no-deps -T db pg_dump app > dump.sql\n  berth -p shop run -d worker ./migrate",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.runOneOff(cmd.Context(), args[0], args[1:], o)
		},
	}
	// Everything after SERVICE is the command, never berth's flags.
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	// -p publishes here, as in docker compose run; the project is still
	// --project-name, or -p before the verb (see normalizeArgs). Declaring
	// --project-name locally keeps cobra from merging the global -p.
	f.StringVar(&e.global.project, "project-name", "", "project (app) name")
	f.StringArrayVarP(&o.publish, "publish", "p", nil, "publish a port of the one-off: [[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL] (repeatable)")
	f.BoolVar(&o.servicePorts, "service-ports", false, "publish the service's own ports too")
	f.BoolVar(&o.rm, "rm", false, "remove the one-off (task, container, record) once it exited")
	f.BoolVar(&o.noDeps, "no-deps", false, "do not start the services it depends on")
	f.BoolVarP(&o.detach, "detach", "d", false, "start the one-off and print its name, without attaching")
	f.BoolVarP(&o.noTTY, "no-TTY", "T", false, "run without a terminal (output bytes exact)")
	f.BoolVarP(&o.interactive, "interactive", "i", true, "keep stdin open (when it is a terminal or a pipe)")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable K=V, or K from berth's own (repeatable)")
	f.StringVar(&o.name, "name", "", "name the one-off (default SERVICE-run-HEX)")
	f.StringVarP(&o.user, "user", "u", "", "run as this user (name, uid, or user:group)")
	f.StringVarP(&o.workdir, "workdir", "w", "", "working directory of the command")
	f.StringVar(&o.entrypoint, "entrypoint", "", "replace the image's entrypoint (and then the service's command)")
	return cmd
}

// runRequest turns the command line into the manager's request (checked
// there again, naming the field): -p specs and --entrypoint's words are
// read here so a typo fails before anything is built or started.
func (e *env) runRequest(app *types.App, service string, command []string, o runOptions) (api.RunRequest, error) {
	if app.Service(service) == nil {
		return api.RunRequest{}, noServiceError(app.Name, service)
	}
	if o.rm && o.detach {
		return api.RunRequest{}, errors.New("--rm and -d cannot be used together: a detached one-off is removed with berth rm once it exited")
	}
	for _, p := range o.publish {
		if _, err := api.ParsePublish(p); err != nil {
			return api.RunRequest{}, fmt.Errorf("-p %w", err)
		}
	}
	req := api.RunRequest{App: app, Service: service, Name: o.name, Command: command, Env: e.execEnv(o.env),
		User: o.user, WorkDir: o.workdir, Publish: o.publish, ServicePorts: o.servicePorts, NoDeps: o.noDeps}
	if o.entrypoint != "" {
		words, err := shellwords.Parse(o.entrypoint)
		if err != nil {
			return req, fmt.Errorf("--entrypoint %q: %w", o.entrypoint, err)
		}
		req.Entrypoint = words
	}
	term, _ := e.stdin.(*os.File)
	if !o.detach && term != nil {
		req.Interactive = o.interactive && feedsInput(term)
		req.TTY = !o.noTTY && app.Service(service).Driver != types.DriverExec && realTerminal(term) && e.isTTY(e.stdout)
	}
	return req, nil
}

func (e *env) runOneOff(ctx context.Context, service string, command []string, o runOptions) error {
	app, err := e.loadApp(ctx)
	if err != nil {
		return err
	}
	req, err := e.runRequest(app, service, command, o)
	if err != nil {
		return err
	}
	c, err := e.ensureManager(ctx)
	if err != nil {
		return err
	}
	defer e.images.Close()
	selected, err := prepareUp(app, upOptions{services: []string{service}, noDeps: o.noDeps})
	if err != nil {
		return err
	}
	part := subsetApp(app, selected)
	if err := e.buildImages(ctx, part, upOptions{}); err != nil {
		return err
	}
	if err := e.shipImages(ctx, c, part, 5*time.Minute); err != nil {
		return err
	}
	resp, err := c.Run(ctx, app.Name, req)
	if err != nil {
		return err
	}
	name := (&types.Task{App: app.Name, Service: resp.Service, Slot: 1}).Name()
	if o.detach {
		fmt.Fprintln(e.stdout, name)
		return nil
	}
	code, err := e.attachOneOff(ctx, c, app.Name, resp.Service, req.TTY)
	if ctx.Err() != nil {
		return e.interruptedRun(c, app.Name, resp.Service, name, o.rm)
	}
	if err != nil {
		return err
	}
	if o.rm {
		if _, err := c.RemoveRun(ctx, app.Name, resp.Service); err != nil {
			return fmt.Errorf("remove one-off %s: %w; remove it with berth rm %s", name, err, resp.Service)
		}
	} else {
		// The exit code came from the engine; the task's record follows
		// with the agent's next report. Wait for it (briefly), so that a
		// berth ps right after shows the one-off exited, as docker
		// compose ps does after compose run. Past recordLag it is left
		// to catch up.
		wctx, cancel := context.WithTimeout(ctx, recordLag)
		_, _ = waitEnded(wctx, c, app.Name, resp.Service)
		cancel()
	}
	if code != 0 {
		return &exitCodeError{code: code}
	}
	return nil
}

// interruptedRun is Ctrl-C while attached: the one-off goes on, unless
// --rm, which stops and removes it as Compose stops its container.
func (e *env) interruptedRun(c *api.Client, app, service, name string, rm bool) error {
	if !rm {
		fmt.Fprintf(e.stderr, "\nInterrupted: one-off %s goes on running in the cluster; see it with berth ps, stop it with berth stop %s, then remove it with berth rm -f %s\n", name, service, service)
		return &exitCodeError{code: exitInterrupted}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.RemoveRun(ctx, app, service); err != nil {
		fmt.Fprintf(e.stderr, "\nInterrupted, but one-off %s could not be stopped: %s; stop it with berth stop %s, then remove it with berth rm -f %s\n", name, describeError(err, e), service, service)
		return &exitCodeError{code: exitInterrupted}
	}
	fmt.Fprintf(e.stderr, "\nInterrupted: one-off %s is stopped and removed\n", name)
	return &exitCodeError{code: exitInterrupted}
}

// attachOneOff waits for the one-off's task to start, then streams it
// through the manager until it exits, and returns its exit code.
func (e *env) attachOneOff(ctx context.Context, c *api.Client, app, service string, tty bool) (int, error) {
	t, err := e.waitStarted(ctx, c, app, service)
	if err != nil {
		return 0, err
	}
	if t.State == types.TaskRejected || t.State == types.TaskLost || (t.State.Terminal() && t.ContainerID == "") {
		fmt.Fprintf(e.stderr, "error: one-off %s %s: %s\n", t.Name(), t.State, t.Error)
		return execFailedCode, nil
	}
	sio := api.ExecIO{Stdin: e.stdin, Stdout: e.stdout, Stderr: e.stderr}
	var rows, cols uint16
	if tty {
		term := e.stdin.(*os.File)
		restore, err := rawTerminal(term)
		if err != nil {
			return 0, err
		}
		defer restore()
		rows, cols = terminalSize(e.stdout)
		resize, stop := watchResize(e.stdout)
		defer stop()
		sio.Resize = resize
	}
	code, err := c.Attach(ctx, t.ID, rows, cols, sio)
	var failed *api.ExecError
	if errors.As(err, &failed) && ctx.Err() == nil {
		// The stream broke (its node went away, a manager failed over):
		// the task's record still tells how it ended.
		fmt.Fprintf(e.stderr, "warning: the output of %s was cut (%s); waiting for it to end\n", t.Name(), failed.Message)
		return e.waitExit(ctx, c, app, service)
	}
	return code, err
}

// waitStarted waits, with blocking queries, for the one-off's task to run
// or end, saying once why it waits when the scheduler or a dependency
// holds it.
func (e *env) waitStarted(ctx context.Context, c *api.Client, app, service string) (*types.Task, error) {
	said := ""
	return watchOneOff(ctx, c, app, service, func(t *types.Task) bool {
		switch {
		case t.State == types.TaskRunning || t.State.Terminal():
			return true
		case t.PendingReason != "" && t.PendingReason != said:
			said = t.PendingReason
			fmt.Fprintf(e.stderr, "%s is pending: %s\n", t.Name(), said)
		}
		return false
	})
}

// waitExit waits for the one-off's task to end and returns its exit code.
func (e *env) waitExit(ctx context.Context, c *api.Client, app, service string) (int, error) {
	t, err := waitEnded(ctx, c, app, service)
	if err != nil {
		return 0, err
	}
	if t.ExitCode == nil {
		fmt.Fprintf(e.stderr, "error: one-off %s %s: %s\n", t.Name(), t.State, t.Error)
		return execFailedCode, nil
	}
	return *t.ExitCode, nil
}

// waitEnded waits, with blocking queries, until the one-off's task record
// says it ended, and returns it.
func waitEnded(ctx context.Context, c *api.Client, app, service string) (*types.Task, error) {
	return watchOneOff(ctx, c, app, service, func(t *types.Task) bool { return t.State.Terminal() })
}

// watchOneOff follows the one-off's tasks with blocking queries until done
// holds for one of them, and returns it.
func watchOneOff(ctx context.Context, c *api.Client, app, service string, done func(*types.Task) bool) (*types.Task, error) {
	var index uint64
	for {
		tasks, meta, err := c.ListTasks(ctx, api.TaskQuery{App: app, Service: service, QueryOptions: api.QueryOptions{Index: index, Wait: blockingWait}})
		if err != nil {
			return nil, err
		}
		index = meta.Index
		for _, t := range tasks {
			if done(t) {
				return t, nil
			}
		}
	}
}

// recordLag bounds how long run waits, after the engine told the one-off's
// exit, for the task's record to say so too.
const recordLag = 10 * time.Second

// feedsInput reports whether stdin has input to give a one-off: a
// terminal, a pipe or a file (not /dev/null, nor a closed stdin).
func feedsInput(f *os.File) bool {
	st, err := f.Stat()
	if err != nil {
		return false
	}
	return st.Mode()&os.ModeNamedPipe != 0 || st.Mode().IsRegular() || realTerminal(f)
}

// realTerminal reports whether f is a terminal (a character device with a
// terminal's modes: /dev/null is a character device too).
func realTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
