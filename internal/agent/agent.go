package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/types"
)

// Agent runs the tasks the manager places on one node. Build it with New,
// then call Run.
type Agent struct {
	cfg    Config
	timing Timing
	log    *slog.Logger
	// managerAddr is cfg.ManagerAddr as host:port.
	managerAddr string
	// identity is the node's certificate; nil until the node has joined,
	// when token is what it joins with.
	identity *pki.Identity
	token    *pki.Token
	// live is the identity once settled, replaced as it is renewed.
	live *pki.Live

	// client and drivers are set by Run once the node's identity, and so
	// its ID, is settled; they do not change afterwards.
	client  *api.Client
	drivers map[string]driver.Driver
	// mesh is the node's DNS and routing mesh (mesh.go), set by Run before
	// the task loop starts; nil without Config.Overlay.
	mesh *mesh

	// register asks the session to register again (a call got 404).
	register chan struct{}
	// resync tells the task loop that the manager may have forgotten what
	// it was told, so every state must be reported again.
	resync chan struct{}

	// store is the local state, open while Run runs.
	store *store

	// netMap are the network map's subscribers (netmap.go); net is the
	// overlay's state the task loop reads (overlay.go).
	netMap netMapSubs
	net    netState
	// newOverlay makes the node's overlay; nil: package overlay's.
	newOverlay func(underlay netip.Addr) (kernelOverlay, error)

	mu     sync.Mutex
	nodeID string
	// managers are the cluster addresses last learned, kept in the store too.
	managers []string
	addr     string
	// registryAddr is where the pull-through endpoint listens ("": off).
	registryAddr string
}

// New checks cfg and finds the node's credentials: the identity in
// DataDir/pki when the node has joined a cluster, or else cfg.JoinToken,
// which must be a worker token. It starts nothing and dials nothing; Run
// joins (when needed), sets up the drivers and runs the node.
func New(cfg Config) (*Agent, error) {
	managerAddr, err := managerHostPort(cfg.ManagerAddr)
	if err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return nil, errors.New("agent needs a data dir to keep its identity and task state")
	}
	if cfg.Name == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("find the hostname for the node name (or give a name): %w", err)
		}
		cfg.Name = host
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	identity, token, err := loadCredentials(cfg)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:         cfg,
		timing:      cfg.Timing.withDefaults(),
		log:         cfg.Logger.With("component", "agent", "node", cfg.Name),
		managerAddr: managerAddr,
		identity:    identity,
		token:       token,
		register:    make(chan struct{}, 1),
		resync:      make(chan struct{}, 1),
	}
	if identity != nil {
		a.nodeID = identity.NodeID
	}
	return a, nil
}

// NodeID is the node's ID: the common name of its certificate, kept in the
// data dir across restarts. It is "" before a node that has not joined yet
// has joined, which Run does before Addr is set.
func (a *Agent) NodeID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nodeID
}

// Addr is the address the agent's API listens on, once Run has started it
// ("" before).
func (a *Agent) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr
}

// Run joins the cluster if the node has not yet (retrying network failures
// until ctx is done, giving up on a refusal), serves the agent API,
// registers with the manager and runs the node's tasks until ctx is done.
// It returns nil on a clean shutdown. Tasks keep running after Run returns:
// a restarted agent adopts them. Run may be called once; it closes the
// drivers the agent built.
func (a *Agent) Run(ctx context.Context) error {
	st, err := openStore(a.cfg.DataDir, a.cfg.VolatileState)
	if err != nil {
		return err
	}
	defer st.Close()
	a.store = st
	if err := a.settleIdentity(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// The endpoint listens before the drivers are built: the docker
	// driver is told its address, and a port in use stops the agent here.
	regLn, err := a.listenRegistry()
	if err != nil {
		return err
	}
	regAddr := ""
	if regLn != nil {
		defer regLn.Close()
		regAddr = regLn.Addr().String()
	}
	drivers, err := setupDrivers(a.cfg, driverEnv{nodeID: a.NodeID(), dataDir: a.cfg.DataDir, registry: regAddr, log: a.log})
	if err != nil {
		return err
	}
	a.drivers = drivers
	defer a.closeDrivers()
	ln, err := net.Listen("tcp", a.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen for the agent API on %s (pick a free --listen address): %w", a.cfg.ListenAddr, err)
	}
	a.mu.Lock()
	a.addr = ln.Addr().String()
	a.mu.Unlock()

	// Deferred in this order so goroutines are told to stop before they
	// are waited for.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.serveAPI(ctx, &wg, ln)
	if err := a.startMesh(ctx, &wg); err != nil {
		return err
	}
	if regLn != nil && a.drivers[types.DriverDocker] != nil {
		a.serveRegistry(ctx, &wg, regLn)
		a.mu.Lock()
		a.registryAddr = regAddr
		a.mu.Unlock()
		a.log.Info("registry endpoint listening", "addr", regAddr)
	} else if regLn != nil {
		_ = regLn.Close() // no engine here to pull through it
	}

	ttl, err := a.registerUntilDone(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.log.Info("agent registered", "node_id", a.NodeID(), "addr", a.Addr(), "drivers", a.driverNames())

	rep := newReporter(a.sendStatus, a.timing, a.log)
	l := newLoop(a, st, rep)
	wg.Go(func() { a.heartbeat(ctx, ttl) })
	wg.Go(func() { a.keepRenewed(ctx) })
	wg.Go(func() { a.watch(ctx, l.desiredCh) })
	if a.cfg.Overlay {
		a.startNetworking(ctx, &wg)
	}
	for name, d := range a.drivers {
		wg.Go(func() { a.forwardEvents(ctx, name, d, l.statusCh) })
	}
	wg.Go(func() { rep.Run(ctx) })
	wg.Go(func() { l.run(ctx) })
	<-ctx.Done()
	a.log.Info("agent stopping; tasks keep running")
	return nil
}

// serveAPI serves the agent API over mutual TLS on ln until ctx is done.
func (a *Agent) serveAPI(ctx context.Context, wg *sync.WaitGroup, ln net.Listener) {
	srv := &http.Server{
		Handler: requireManager(a.routes()),
		// Only holders of a cluster certificate get past the handshake;
		// requireManager then admits managers only.
		TLSConfig:         a.live.ServerTLS(tls.RequireAndVerifyClientCert, nil),
		ReadHeaderTimeout: 10 * time.Second,
		// Requests end with the agent: a followed log stream stops too.
		BaseContext: func(net.Listener) context.Context { return ctx },
		// Refused handshakes (a scanner, a node of another cluster) are
		// worth a line in the agent's log, not on bare stderr.
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	wg.Go(func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("agent API stopped", "err", err)
		}
	})
	wg.Go(func() {
		<-ctx.Done()
		_ = srv.Close()
	})
}

// listenRegistry opens the pull-through endpoint's listener when it is
// on and the node may run docker tasks (nil otherwise): only the engine
// uses it.
func (a *Agent) listenRegistry() (net.Listener, error) {
	if a.cfg.RegistryAddr == "" {
		return nil, nil
	}
	_, override := a.cfg.DriverOverrides[types.DriverDocker]
	if len(a.cfg.Drivers) > 0 && !slices.Contains(a.cfg.Drivers, types.DriverDocker) && !override {
		return nil, nil
	}
	return listenRegistry(a.cfg.RegistryAddr)
}

// RegistryAddr is the address the pull-through endpoint listens on, once
// Run has started it ("" before, or when it is off).
func (a *Agent) RegistryAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.registryAddr
}

// advertised is the address the manager should use to reach the agent API.
func (a *Agent) advertised() string {
	if a.cfg.AdvertiseAddr != "" {
		return a.cfg.AdvertiseAddr
	}
	return a.Addr()
}

// closeDrivers releases the drivers New built (not those passed in).
func (a *Agent) closeDrivers() {
	for name, d := range a.drivers {
		if _, given := a.cfg.DriverOverrides[name]; given {
			continue
		}
		if c, ok := d.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

func (a *Agent) driverNames() []string {
	names := make([]string, 0, len(a.drivers))
	for n := range a.drivers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// node is what the agent registers.
func (a *Agent) node() types.Node {
	return types.Node{
		ID:           a.NodeID(),
		Name:         a.cfg.Name,
		Address:      a.advertised(),
		Role:         types.RoleWorker,
		Capacity:     a.capacity(),
		Drivers:      a.driverNames(),
		AgentVersion: a.cfg.Version,
		Overlay:      a.cfg.Overlay,
	}
}

// signal does a non-blocking send on a 1-buffered channel: a signal already
// pending is as good as a second one.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// capacity is what the node offers: Config.Capacity when given, else the
// machine's.
func (a *Agent) capacity() types.ResourceAmounts {
	if a.cfg.Capacity != nil {
		return *a.cfg.Capacity
	}
	return capacity()
}
