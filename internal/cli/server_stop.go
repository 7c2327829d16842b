package cli

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/spf13/cobra"
)

func newServerStopCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the manager running on this machine at --addr",
		Long: `Stop a manager running on this machine, such as the local cluster berth up
started: ask it for its process ID, send it SIGTERM, and wait until it is gone.
Its data stays, so the next berth up finds the apps again. The apps'
containers keep running; berth down removes an app (and starts the local
cluster again to do so).`,
		Example:     "  berth server stop\n  berth server stop --addr 127.0.0.1:7800",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{noContextAnnotation: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.serverStop(cmd.Context())
		},
	}
}

func (e *env) serverStop(ctx context.Context) error {
	hostPort, err := listenAddr(e.global.addr)
	if err != nil {
		return err
	}
	if !api.IsLoopback(hostPort) {
		return fmt.Errorf("%s is not on this machine; berth server stop only stops a local manager", e.global.addr)
	}
	st, err := e.client().Status(ctx)
	if err != nil {
		if isConnRefused(err) {
			return fmt.Errorf("no berth manager answers at %s; nothing to stop", e.global.addr)
		}
		return err
	}
	if st.PID <= 0 {
		return fmt.Errorf("the manager at %s did not tell its process ID", e.global.addr)
	}
	if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal the manager (pid %d): %w", st.PID, err)
	}
	if err := waitGone(ctx, st.PID, e.exitWait); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Stopped the manager at %s (pid %d)\n%s", e.global.addr, st.PID, appsKeepRunningNote)
	return nil
}

// appsKeepRunningNote follows a stopped manager: its agents' containers are
// not stopped with it (by design: a manager restart must not take the apps
// down), which surprises a user who expected docker compose stop.
const appsKeepRunningNote = "The apps' containers keep running. To remove an app, run berth down in its directory " +
	"(or berth down -p NAME): on this machine's default address it starts the local cluster again to do so.\n"

// waitGone waits until process pid no longer exists.
func waitGone(ctx context.Context, pid int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the manager (pid %d) is still running after %s; see its log, or stop it with kill -9 %d", pid, timeout, pid)
		case <-tick.C:
		}
	}
}
