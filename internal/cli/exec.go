package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

type execOptions struct {
	noTTY   bool
	user    string
	workdir string
	env     []string
	index   int
}

func newExecCommand(e *env) *cobra.Command {
	var o execOptions
	cmd := &cobra.Command{
		Use:     "exec [-T] [-u USER] [-w DIR] [-e K=V] [--index N] SERVICE CMD...",
		Short:   "Run a command in a running replica of a service, on whichever node it runs",
		Example: "  berth exec -T db pg_dump app > dump.sql\n  berth exec --index 2 web env",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.exec(cmd.Context(), args[0], args[1:], o)
		},
	}
	// Everything after SERVICE is the command, never berth's flags.
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.BoolVarP(&o.noTTY, "no-TTY", "T", false, "run without a terminal (output bytes exact)")
	f.StringVarP(&o.user, "user", "u", "", "run as this user (name, uid or uid:gid)")
	f.StringVarP(&o.workdir, "workdir", "w", "", "working directory of the command")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable K=V (repeatable)")
	f.IntVar(&o.index, "index", 1, "which replica of the service (1 is the first)")
	return cmd
}

func (e *env) exec(ctx context.Context, service string, command []string, o execOptions) error {
	if !o.noTTY && e.isTTY(os.Stdin) {
		return fmt.Errorf("berth exec does not give a terminal yet; run it with -T")
	}
	name, err := e.appName(ctx)
	if err != nil {
		return err
	}
	c := e.client()
	if err := checkServices(ctx, c, name, []string{service}); err != nil {
		return err
	}
	tasks, _, err := c.ListTasks(ctx, api.TaskQuery{App: name})
	if err != nil {
		return err
	}
	t := runningReplica(tasks, service, o.index)
	if t == nil {
		return fmt.Errorf("service %s has no running replica %d; see berth ps", service, o.index)
	}
	code, err := c.Exec(ctx, t.ID, api.ExecOptions{Cmd: command, User: o.user, WorkDir: o.workdir, Env: o.env},
		api.ExecIO{Stdin: os.Stdin, Stdout: e.stdout, Stderr: e.stderr})
	if err != nil {
		return fmt.Errorf("exec in %s: %s", t.Name(), describeError(err, e))
	}
	if code != 0 {
		return &exitCodeError{code: code}
	}
	return nil
}

// runningReplica picks the running task of a service's replica index (a
// global service's replicas count in node order).
func runningReplica(tasks []*types.Task, service string, index int) *types.Task {
	var running []*types.Task
	for _, t := range tasks {
		if t.Service == service && t.State == types.TaskRunning {
			if t.Slot == index {
				return t
			}
			running = append(running, t)
		}
	}
	sortTasks(running)
	if index >= 1 && index <= len(running) && running[index-1].Slot == 0 {
		return running[index-1]
	}
	return nil
}
