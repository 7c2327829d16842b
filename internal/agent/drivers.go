package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/driver/docker"
	execdriver "github.com/berth-dev/berth/internal/driver/exec"
	"github.com/berth-dev/berth/internal/types"
)

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// driverEnv is what the agent tells the drivers it builds.
type driverEnv struct {
	nodeID, dataDir string
	// registry is the pull-through endpoint's address ("" when off).
	registry string
	log      *slog.Logger
}

// driverFactory builds one driver for a node.
type driverFactory func(ctx context.Context, env driverEnv) (driver.Driver, error)

// factory returns how to build the named driver, or nil if the agent
// cannot build it itself.
func factory(name string) driverFactory {
	switch name {
	case types.DriverExec:
		return func(ctx context.Context, env driverEnv) (driver.Driver, error) {
			return execdriver.New(execdriver.Config{NodeID: env.nodeID, DataDir: filepath.Join(env.dataDir, "exec"), Logger: env.log})
		}
	case types.DriverDocker:
		return func(ctx context.Context, env driverEnv) (driver.Driver, error) {
			return docker.New(ctx, docker.Config{NodeID: env.nodeID, DataDir: filepath.Join(env.dataDir, "docker"),
				Registry: env.registry, Logger: env.log})
		}
	}
	return nil
}

// setupDrivers builds the node's drivers: those cfg.Drivers names, or by
// default every one that works here (docker only when an engine answers).
// cfg.DriverOverrides replaces drivers by name, and adds to a default set.
func setupDrivers(cfg Config, env driverEnv) (map[string]driver.Driver, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out := map[string]driver.Driver{}
	names, required := cfg.Drivers, len(cfg.Drivers) > 0
	if !required {
		names = []string{types.DriverExec, types.DriverDocker}
	}
	for _, name := range names {
		if _, ok := cfg.DriverOverrides[name]; ok {
			continue
		}
		build := factory(name)
		if build == nil {
			if !required {
				continue
			}
			return nil, fmt.Errorf("unknown driver %q; use %s or %s", name, types.DriverDocker, types.DriverExec)
		}
		d, err := build(ctx, env)
		if err != nil && required {
			return nil, fmt.Errorf("set up the %s driver: %w", name, err)
		}
		if err != nil {
			env.log.Info("driver not available", "driver", name, "err", err)
			continue
		}
		out[name] = d
	}
	for name, d := range cfg.DriverOverrides {
		out[name] = d
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no driver works on this node (tried %v)", names)
	}
	return out, nil
}
