package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/machine/supervise"
	"github.com/spf13/cobra"
)

// newSuperviseCommand is the hidden `berth machine-supervise`: the small
// supervisor the machine drivers run berth and a host's dockerd under (see
// package machine/supervise). Users never call it. With --stop or --status
// it acts on the supervisor of --pidfile instead, so that the ssh driver
// stops and checks a remote host's supervisor with the same code as the
// local driver (the berth binary it copied there runs these).
func newSuperviseCommand() *cobra.Command {
	var o supervise.Options
	var stop, status bool
	var stopTimeout time.Duration
	cmd := &cobra.Command{
		Use:         "machine-supervise --pidfile FILE (--log FILE -- CMD [ARG...] | --stop | --status)",
		Short:       "Keep a command running (used by berth machine hosts)",
		Hidden:      true,
		Annotations: map[string]string{noContextAnnotation: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case stop && status:
				return errors.New("--stop and --status: give one")
			case (stop || status) && len(args) > 0:
				return errors.New("--stop and --status take no command")
			case stop:
				supervise.Stop(o.Pidfile, stopTimeout)
				return nil
			case status:
				state := "stopped"
				if supervise.Running(o.Pidfile) {
					state = "running"
				}
				fmt.Fprintln(cmd.OutOrStdout(), state)
				return nil
			case o.Log == "":
				return errors.New("--log is required: the file the command's output goes to")
			case len(args) == 0:
				return errors.New("no command to supervise: give it after --")
			}
			o.Args = args
			return supervise.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Pidfile, "pidfile", "", "file to write the supervisor's pid to (required)")
	f.StringVar(&o.Log, "log", "", "file the command's output is appended to (required to supervise)")
	f.StringArrayVar(&o.ClearPidfiles, "clear-pidfile", nil, "pidfile of a child the command leaves behind: wait for it to be gone and delete it before each start (repeatable)")
	f.BoolVar(&stop, "stop", false, "stop the supervisor of --pidfile and its command, and wait until both are gone")
	f.DurationVar(&stopTimeout, "stop-timeout", 30*time.Second, "with --stop: how long the supervisor has to stop before it is killed")
	f.BoolVar(&status, "status", false, "print running or stopped: whether the supervisor of --pidfile runs")
	_ = cmd.MarkFlagRequired("pidfile")
	return cmd
}
