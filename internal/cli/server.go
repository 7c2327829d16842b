package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/agent"
	"github.com/berth-dev/berth/internal/server"
	"github.com/spf13/cobra"
)

type serverOptions struct {
	dev      bool
	dataDir  string
	name     string
	raftAddr string
}

func newServerCommand(e *env) *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a manager (with --dev, a whole one-node cluster)",
		Long: `Run a berth manager: the Raft-replicated state, the API, the controllers and
the scheduler. It listens on --addr.

With --dev it also runs an agent in the same process, so one command gives a
one-node cluster. Without --data-dir, a dev cluster keeps its data in a
temporary directory removed on exit.`,
		Example: "  berth server --dev\n  berth server --addr 10.0.0.5:7700 --data-dir /var/lib/berth --name m1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.server(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.dev, "dev", false, "also run an agent in this process (a one-node cluster)")
	f.StringVar(&o.dataDir, "data-dir", "", "directory of the manager's state (default: $XDG_STATE_HOME/berth/server, or a temporary one with --dev)")
	f.StringVar(&o.name, "name", "", "name of this manager (default: the hostname)")
	f.StringVar(&o.raftAddr, "raft-addr", "", "address Raft listens on (default: the API port + 1)")
	cmd.AddCommand(newServerStopCommand(e))
	return cmd
}

func (e *env) server(ctx context.Context, o serverOptions) error {
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	listen, err := listenAddr(e.global.addr)
	if err != nil {
		return err
	}
	dataDir, cleanup, err := e.serverDataDir(o)
	if err != nil {
		return err
	}
	defer cleanup()
	serverDir := dataDir
	if o.dev {
		serverDir = filepath.Join(dataDir, "server")
	}
	srv, err := server.New(server.Config{
		Name: o.name, DataDir: serverDir, HTTPAddr: listen, RaftAddr: o.raftAddr,
		Dev: o.dev, Version: Version(), Logger: log,
	})
	if err != nil {
		return fmt.Errorf("start the manager: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- srv.Run(ctx) }()
	running := 1
	if o.dev {
		ag, err := agent.New(agent.Config{
			ManagerAddr: "http://" + srv.Addr(), Name: o.name, DataDir: filepath.Join(dataDir, "agent"),
			ListenAddr: "127.0.0.1:0", Version: Version(), Logger: log,
		})
		if err != nil {
			cancel()
			<-done
			return fmt.Errorf("start the dev cluster's agent: %w", err)
		}
		go func() { done <- ag.Run(ctx) }()
		running++
	}
	return waitAll(cancel, done, running)
}

// waitAll waits for n components reporting on done. The first to stop
// (the signal, or a failure) stops the others; the first error is returned.
func waitAll(cancel context.CancelFunc, done <-chan error, n int) error {
	var first error
	for range n {
		err := <-done
		cancel()
		if first == nil && err != nil && !errors.Is(err, context.Canceled) {
			first = err
		}
	}
	return first
}

// serverDataDir picks the data directory; a dev cluster without one gets a
// temporary directory that cleanup removes.
func (e *env) serverDataDir(o serverOptions) (dir string, cleanup func(), err error) {
	nothing := func() {}
	switch {
	case o.dataDir != "":
		return o.dataDir, nothing, nil
	case o.dev:
		dir, err := os.MkdirTemp("", "berth-dev-")
		if err != nil {
			return "", nil, fmt.Errorf("create a temporary data directory: %w", err)
		}
		return dir, func() { os.RemoveAll(dir) }, nil
	}
	dir, err = e.stateDir("server")
	return dir, nothing, err
}
