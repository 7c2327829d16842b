package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
)

// Config configures a docker driver for one node.
type Config struct {
	// NodeID labels every container; List and Events see only this node's.
	NodeID string
	// DataDir holds config files of tasks, and secret files when it is a tmpfs.
	DataDir string
	Logger  *slog.Logger
	// Host is the engine address ("unix:///var/run/docker.sock"); empty:
	// DOCKER_HOST or the default socket.
	Host string
	// Registry is the agent's pull-through endpoint of the cluster
	// registry ("127.0.0.1:7703"), where images with a ClusterImage are
	// pulled from; empty: the node cannot pull them.
	Registry string
	// SecretsDir overrides where secret files go (tests); it must be a tmpfs.
	SecretsDir string
}

// Driver runs tasks as Docker containers. It is safe for concurrent use.
type Driver struct {
	cli     *client.Client
	nodeID  string
	log     *slog.Logger
	files   *taskFiles
	ensurer *resourceEnsurer
	images  imageCache
	// registry is Config.Registry; pulls joins concurrent pulls of one
	// reference into one.
	registry string
	pulls    pullGroup
	// discarded are the containers Start removed after a failed start:
	// their events are not news, the failed Start already told the agent
	// what became of the task.
	discarded recentIDs
	// statuses is the newest inspection of each container (see List).
	statuses statusCache
	// selfStarts are the containers Start is starting: their start event
	// is not news, Start returns their status.
	selfStarts recentIDs
}

var _ driver.Driver = (*Driver)(nil)

// New connects to the engine and checks that it answers.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.NodeID == "" {
		return nil, errors.New("docker driver: a node ID is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("docker driver: a data directory is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []client.Opt{client.FromEnv}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker driver: configure client: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(pingCtx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker driver: the engine at %s does not answer (is dockerd running?): %w", cli.DaemonHost(), err)
	}
	files, err := newTaskFiles(cfg, log)
	if err != nil {
		cli.Close()
		return nil, err
	}
	return &Driver{
		cli:      cli,
		nodeID:   cfg.NodeID,
		log:      log.With("driver", "docker", "node", cfg.NodeID),
		files:    files,
		ensurer:  newResourceEnsurer(cli),
		registry: cfg.Registry,
	}, nil
}

// Name is "docker".
func (d *Driver) Name() string { return "docker" }

// Close releases the engine connection. Containers keep running.
func (d *Driver) Close() error { return d.cli.Close() }

// Client is the engine client, for callers that share the connection (image
// builds on the same engine).
func (d *Driver) Client() *client.Client { return d.cli }

func defaultSecretsDir(nodeID string) string {
	return filepath.Join("/run/berth", nodeID, "secrets")
}

// keyedMutex serializes work per key (a network or volume name).
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*sync.Mutex{}
	}
	l, ok := k.locks[key]
	if !ok {
		l = &sync.Mutex{}
		k.locks[key] = l
	}
	k.mu.Unlock()
	l.Lock()
	return l.Unlock
}
