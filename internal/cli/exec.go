package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// execFailedCode is berth exec's exit code when berth or the node failed
// and the command's own code is unknown: docker's 125, "the error is with
// the engine, not the command".
const execFailedCode = 125

type execOptions struct {
	noTTY   bool
	detach  bool
	user    string
	workdir string
	env     []string
	index   int
}

func newExecCommand(e *env) *cobra.Command {
	var o execOptions
	cmd := &cobra.Command{
		Use:   "exec [-T] [-d] [-u USER] [-w DIR] [-e K=V] [--index N] SERVICE CMD...",
		Short: "Run a command in a running replica of a service, on whichever node it runs",
		Long: `Run a command in a running task of a service, as docker compose exec does, on
whichever node the task runs: the CLI talks to a manager, which streams to the
task's agent. A terminal is given when stdin and stdout are terminals (-T: none,
so output bytes are exact); the command's exit code is berth's. For the exec
driver the command runs on the task's host in its working directory and
environment, without a terminal.`,
		Example: "  berth exec web sh\n  berth exec -T db pg_dump app > dump.sql\n  echo hi | berth exec -T --index 2 web cat",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.exec(cmd.Context(), args[0], args[1:], o)
		},
	}
	// Everything after SERVICE is the command, never berth's flags.
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.BoolVarP(&o.noTTY, "no-TTY", "T", false, "run without a terminal (output bytes exact)")
	f.BoolVarP(&o.detach, "detach", "d", false, "run the command in the background and return at once")
	f.StringVarP(&o.user, "user", "u", "", "run as this user (name, uid, or user:group)")
	f.StringVarP(&o.workdir, "workdir", "w", "", "working directory of the command")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable K=V, or K from berth's own (repeatable)")
	f.IntVar(&o.index, "index", 1, "which replica of the service (1 is the first)")
	return cmd
}

func (e *env) exec(ctx context.Context, service string, command []string, o execOptions) error {
	svc, t, err := e.runningTask(ctx, service, o.index)
	if err != nil {
		return err
	}
	opts := api.ExecOptions{Cmd: command, User: o.user, WorkDir: o.workdir, Env: e.execEnv(o.env), Detach: o.detach}
	// The exec driver's tasks have no terminal to give: run as -T.
	term, _ := e.stdin.(*os.File)
	opts.TTY = !o.noTTY && !o.detach && svc.Driver != types.DriverExec && term != nil && isTerminal(term) && e.isTTY(e.stdout)
	sio := api.ExecIO{Stdin: e.stdin, Stdout: e.stdout, Stderr: e.stderr}
	if o.detach {
		sio.Stdin = nil
	}
	if opts.TTY {
		restore, err := rawTerminal(term)
		if err != nil {
			return err
		}
		defer restore()
		opts.Rows, opts.Cols = terminalSize(e.stdout)
		resize, stop := watchResize(e.stdout)
		defer stop()
		sio.Resize = resize
	}
	code, err := e.client().Exec(ctx, t.ID, opts, sio)
	var failed *api.ExecError
	if errors.As(err, &failed) {
		fmt.Fprintf(e.stderr, "error: exec in %s: %s\n", t.Name(), failed.Message)
		return &exitCodeError{code: execFailedCode}
	}
	if err != nil {
		return fmt.Errorf("exec in %s: %w", t.Name(), err)
	}
	if code != 0 {
		return &exitCodeError{code: code}
	}
	return nil
}

// execEnv is -e as docker exec reads it: K=V as given, a bare K with
// berth's own value of K (left out when berth has none).
func (e *env) execEnv(kvs []string) []string {
	var out []string
	for _, kv := range kvs {
		if strings.Contains(kv, "=") {
			out = append(out, kv)
		} else if v, ok := lookupEnv(e.environ(), kv); ok {
			out = append(out, kv+"="+v)
		}
	}
	return out
}

func lookupEnv(environ []string, key string) (string, bool) {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// pickReplica is the running task of a service's replica index, 1-based as
// --index is in Compose: the slot of a replicated service; for a global
// one, the place among its running tasks in node order.
func pickReplica(tasks []*types.Task, service string, index int) (*types.Task, error) {
	var running []*types.Task
	for _, t := range tasks {
		if t.Service == service && t.State == types.TaskRunning && t.DesiredState == types.DesiredRunning {
			running = append(running, t)
		}
	}
	if len(running) == 0 {
		return nil, fmt.Errorf("service %s has no running task; start it with berth up, and see why it is not running with berth ps", service)
	}
	sortTasks(running)
	var indexes []int
	for i, t := range running {
		n := t.Slot
		if n == 0 {
			n = i + 1
		}
		if n == index {
			return t, nil
		}
		indexes = append(indexes, n)
	}
	slices.Sort(indexes)
	names := make([]string, len(indexes))
	for i, n := range indexes {
		names[i] = strconv.Itoa(n)
	}
	return nil, fmt.Errorf("service %s has no running replica %d; running replicas: %s (pick one with --index)", service, index, strings.Join(names, ", "))
}

// rawTerminal puts the terminal f in raw mode, as docker exec -it does, so
// keys (Ctrl-C too) go to the command; restore puts it back.
func rawTerminal(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read the terminal's mode: %w; run berth exec -T for no terminal", err)
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("put the terminal in raw mode: %w; run berth exec -T for no terminal", err)
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// terminalSize is w's size in rows and columns (0, 0 when unknown).
func terminalSize(w io.Writer) (rows, cols uint16) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0
	}
	return ws.Row, ws.Col
}

// watchResize sends w's size whenever the terminal is resized (SIGWINCH)
// until stop.
func watchResize(w io.Writer) (<-chan [2]uint16, func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	out := make(chan [2]uint16, 1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-sig:
				r, c := terminalSize(w)
				select {
				case out <- [2]uint16{r, c}:
				default: // one is waiting; the next signal brings the newest
				}
			}
		}
	}()
	return out, func() { signal.Stop(sig); close(done) }
}
