package cli

import (
	"github.com/berth-dev/berth/internal/machine/supervise"
	"github.com/spf13/cobra"
)

// newSuperviseCommand is the hidden `berth machine-supervise`: the small
// supervisor the machine drivers run berth and a host's dockerd under (see
// package machine/supervise). Users never call it.
func newSuperviseCommand() *cobra.Command {
	var o supervise.Options
	cmd := &cobra.Command{
		Use:         "machine-supervise --pidfile FILE --log FILE -- CMD [ARG...]",
		Short:       "Keep a command running (used by berth machine hosts)",
		Hidden:      true,
		Args:        cobra.MinimumNArgs(1),
		Annotations: map[string]string{noContextAnnotation: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Args = args
			return supervise.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Pidfile, "pidfile", "", "file to write the supervisor's pid to (required)")
	f.StringVar(&o.Log, "log", "", "file the command's output is appended to (required)")
	_ = cmd.MarkFlagRequired("pidfile")
	_ = cmd.MarkFlagRequired("log")
	return cmd
}
