package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Run executes the berth command line args (without the program name),
// writing results to stdout and messages to stderr, and returns the process
// exit code. ctx should be cancelled on SIGINT/SIGTERM; every command that
// waits gives up when it is.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return run(ctx, args, newEnv(stdout, stderr))
}

// run is Run with the environment made explicit, so tests can replace the
// outside world (compose loader, image builder, clock, environment).
func run(ctx context.Context, args []string, e *env) int {
	root := newRootCommand(e)
	root.SetArgs(normalizeArgs(args))
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if ec := (*exitCodeError)(nil); errors.As(err, &ec) {
		return ec.code // a command berth ran for the user said it all
	}
	fmt.Fprintf(e.stderr, "error: %s\n", describeError(err, e))
	return 1
}

// newRootCommand builds the whole command tree. It is built anew for every
// call so no flag value survives from one invocation (or test) to the next.
func newRootCommand(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Run Compose apps on a cluster",
		Long:          "berth runs Compose-file apps on a cluster of machines: berth up, ps, scale, logs, down.",
		SilenceUsage:  true,
		SilenceErrors: true,
		// A command line without a verb prints help rather than failing.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.CompletionOptions.DisableDefaultCmd = true
	e.global = globalOptions{}
	e.global.register(root, e)
	root.AddCommand(
		newUpCommand(e),
		newDownCommand(e),
		newPsCommand(e),
		newLsCommand(e),
		newDeploymentsCommand(e),
		newRollbackCommand(e),
		newDeployCommand(e),
		newInspectCommand(e),
		newEventsCommand(e),
		newScaleCommand(e),
		newServiceCommand(e),
		newLogsCommand(e),
		newExecCommand(e),
		newRunCommand(e), // oneoff.go
		newCpCommand(e),
		newConfigCommand(e),
		newServerCommand(e),
		newAgentCommand(e),
		newSimCommand(e),
		newNodeCommand(e),
		newImageCommand(e),
		newTokenCommand(e),
		newSnapshotCommand(e),
		newContextCommand(e),
		newVersionCommand(e),
		newMachineCommand(e),
		newClusterCommand(e),
		newSuperviseCommand(),
		newPortCommand(e),
		newImagesCommand(e),
		newCompletionCommand(),
		newStopCommand(e), // lifecycle*.go
		newStartCommand(e),
		newRestartCommand(e),
		newRmCommand(e),
		newKillCommand(e),
		newPauseCommand(e, false),
		newPauseCommand(e, true),
		newTopCommand(e),
		newWaitCommand(e),
		newBuildCommand(e),
		newPullCommand(e),
		newPushCommand(e),
		newNetworkCommand(e),
		newVolumeCommand(e),
	)
	return root
}

// newEnv is the real outside world.
func newEnv(stdout, stderr io.Writer) *env {
	return &env{
		stdout:     stdout,
		stderr:     stderr,
		stdin:      os.Stdin,
		getenv:     os.Getenv,
		environ:    os.Environ,
		project:    composeLoader{},
		images:     &dockerImages{},
		now:        timeNow,
		spawn:      spawnLocalCluster,
		defAddr:    defaultAddr,
		isTTY:      isTerminal,
		termWidth:  terminalWidth,
		exitWait:   defaultExitWait,
		stallGrace: defaultStallGrace,
	}
}
