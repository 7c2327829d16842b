package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/controller"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/raftnode"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/state"
)

// DefaultHeartbeatTTL is how long a node may be silent before it is down.
const DefaultHeartbeatTTL = 15 * time.Second

// Server is one manager.
type Server struct {
	cfg   Config
	id    string
	log   *slog.Logger
	store *state.Store
	raft  *raftnode.Node
	creds *credentials
	ln    net.Listener // user API
	cln   net.Listener // cluster port (mutual TLS)
	http  *http.Server
	chttp *http.Server
	// plainAPI: the user API listens on loopback only and speaks plain
	// HTTP there (it still requires a credential).
	plainAPI bool
	// managerTransport dials other managers, agentTransport agents, with
	// this manager's certificate.
	managerTransport *http.Transport
	agentTransport   *http.Transport
	beats            *heartbeats
	// monitor is the node monitor while this manager leads: it holds the
	// heartbeat TTL in force (heartbeatTTL).
	monitor atomic.Pointer[controller.NodeMonitor]
	// reports commits agents' task reports in groups (reports.go).
	reports *reportBatcher
	// registry is the cluster registry's share on this manager (issue 16).
	registry *registry.Registry
	metrics  *metrics
	clock    controller.Clock
	// applyMu serialises plan application so two plans never race on the
	// same fresh state.
	applyMu sync.Mutex
}

// New opens (or creates) the manager's data and identity (bootstrapping a
// new cluster, or joining one with cfg.Join), starts Raft over mutual TLS
// and binds the API and cluster listeners. Call Run to serve.
func New(cfg Config) (*Server, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	joining := freshJoin(cfg)
	if err := checkJoinDisk(cfg, joining); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	id, err := loadOrCreateID(filepath.Join(cfg.DataDir, "server-id"))
	if err != nil {
		return nil, err
	}
	store, err := state.NewStore()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, id: id, log: cfg.Logger, store: store, beats: newHeartbeats(), clock: controller.RealClock{},
		plainAPI: api.IsLoopback(cfg.HTTPAddr) && !cfg.SecureAPI}
	s.metrics = newMetrics(s)
	s.reports = &reportBatcher{commit: s.Commit}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if s.creds, err = s.prepareIdentity(ctx); err != nil {
		return nil, err
	}
	s.registry, err = registry.New(context.Background(), registry.Config{Dir: registryDir(cfg.DataDir),
		MaxBytes: cfg.RegistryMaxBytes, Reserve: registryReserve, FreeSpace: raftnode.FreeBytes,
		Logger: cfg.Logger.With("component", "registry")})
	if err != nil {
		return nil, err
	}
	// A follower forwards every write its agents send (status reports,
	// heartbeats) to the leader, many at once: with net/http's default of
	// 2 idle connections per host, each one past them was closed after use
	// and the next paid a new TLS handshake (1,400 in a 10 s deploy of 100
	// sim nodes, a fifth of the leader's CPU).
	s.managerTransport = &http.Transport{TLSClientConfig: s.creds.live.ClientTLS(pki.RoleManager.ServerName()),
		MaxIdleConnsPerHost: maxForwardIdle, IdleConnTimeout: 90 * time.Second}
	s.agentTransport = &http.Transport{TLSClientConfig: s.creds.live.ClientTLS(pki.RoleWorker.ServerName())}
	if err := s.listen(); err != nil {
		return nil, s.withdrawJoin(joining, err)
	}
	if err := s.startRaft(); err != nil {
		s.ln.Close()
		s.cln.Close()
		return nil, s.withdrawJoin(joining, err)
	}
	s.http = &http.Server{Handler: s.refuseWhenHalted(s.routes(false)), ReadHeaderTimeout: 10 * time.Second}
	// Refused handshakes (a revoked node, another cluster's) belong in
	// the manager's log.
	s.chttp = &http.Server{Handler: s.refuseWhenHalted(s.routes(true)), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	return s, nil
}

// listen binds the user API (HTTPS beyond loopback, credentials always) and
// the cluster port (always TLS; client certificates verified when given,
// required per route). Both refuse a revoked certificate at the handshake.
func (s *Server) listen() error {
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.HTTPAddr, err)
	}
	if !s.plainAPI {
		ln = tls.NewListener(ln, s.metrics.countHandshakes(s.creds.live.ServerTLS(tls.VerifyClientCertIfGiven, s.checkRevoked), "api"))
	}
	cln, err := net.Listen("tcp", s.cfg.ClusterAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen on the cluster address %s: %w", s.cfg.ClusterAddr, err)
	}
	s.ln, s.cln = ln, tls.NewListener(cln, s.metrics.countHandshakes(s.creds.live.ServerTLS(tls.VerifyClientCertIfGiven, s.checkRevoked), "cluster"))
	return nil
}

func (s *Server) startRaft() error {
	_, statErr := os.Stat(filepath.Join(s.cfg.DataDir, bootstrapFile))
	rc := raftnode.Config{
		ID: s.id, DataDir: s.cfg.DataDir, BindAddr: s.cfg.RaftAddr, Logger: s.cfg.Logger,
		TLS: raftTLS(s.creds.live, s.checkRevoked),
		// Only the manager that made a new cluster starts Raft on its own;
		// a joined one waits for the leader to add it.
		Bootstrap: statErr == nil,
	}
	if s.cfg.ForceNewCluster {
		scratch, err := state.NewStore()
		if err != nil {
			return err
		}
		if err := raftnode.ForceNewCluster(rc, state.NewFSM(scratch, s.log)); err != nil {
			return fmt.Errorf("force a new cluster from %s: %w", s.cfg.DataDir, err)
		}
		s.log.Warn("this manager's data now forms a one-manager cluster; other managers must join it again")
	}
	var err error
	s.raft, err = raftnode.New(rc, state.NewFSM(s.store, s.cfg.Logger))
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	return nil
}

func (c *Config) fill() error {
	if c.DataDir == "" {
		return errors.New("server: a data directory is required")
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:7700"
	}
	if c.RaftAddr == "" {
		host, port, err := net.SplitHostPort(c.HTTPAddr)
		if err != nil {
			return fmt.Errorf("server: bad address %q: %w", c.HTTPAddr, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p == 0 {
			return fmt.Errorf("server: give --raft-addr when the API port is %q", port)
		}
		c.RaftAddr = net.JoinHostPort(host, strconv.Itoa(p+1))
	}
	if c.ClusterAddr == "" {
		host, port, _ := net.SplitHostPort(c.HTTPAddr)
		p, err := strconv.Atoi(port)
		if err != nil || p == 0 {
			return fmt.Errorf("server: give --cluster-addr when the API port is %q", port)
		}
		c.ClusterAddr = net.JoinHostPort(host, strconv.Itoa(p+2))
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.HeartbeatTTL <= 0 {
		c.HeartbeatTTL = DefaultHeartbeatTTL
	}
	c.Limits.fill()
	switch {
	case c.CertTTL == 0:
		c.CertTTL = pki.DefaultCertTTL
	case c.CertTTL < MinCertTTL || c.CertTTL > pki.MaxCertTTL:
		return fmt.Errorf("server: a certificate lifetime (--cert-ttl) of %s is outside %s to %s", c.CertTTL, MinCertTTL, pki.MaxCertTTL)
	}
	if err := CheckRegistryGCGrace(c.RegistryGCGrace); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if c.RegistryGCGrace == 0 {
		c.RegistryGCGrace = DefaultRegistryGCGrace
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	return nil
}

// Addr is the API's address, "host:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// APIURL is the user API's address with its scheme: http:// for a plain
// loopback API, https:// for a secured one; what a client's --addr takes.
func (s *Server) APIURL() string {
	if s.plainAPI {
		return "http://" + s.Addr()
	}
	return "https://" + s.Addr()
}

// ClusterAddr is the cluster port's address, where agents join and talk.
func (s *Server) ClusterAddr() string { return s.cln.Addr().String() }

// AdminToken is the admin token made when this run bootstrapped a new
// cluster, to be shown once to the operator (never logged: the cluster keeps
// only its hash); "" otherwise.
func (s *Server) AdminToken() string { return s.creds.adminToken }

// Run serves the API and, while this manager leads, runs the controllers.
// It returns when ctx is done, after shutting the API and Raft down.
func (s *Server) Run(ctx context.Context) error {
	serveErr := make(chan error, 2)
	go func() { serveErr <- s.http.Serve(s.ln) }()
	go func() { serveErr <- s.chttp.Serve(s.cln) }()
	s.log.Info("manager listening", "api", s.Addr(), "cluster", s.ClusterAddr(), "raft", s.cfg.RaftAddr, "data", s.cfg.DataDir)
	if s.cfg.Join != "" {
		go s.becomeVoter(ctx)
	}
	go s.keepRenewed(ctx)
	go s.replicate(ctx)
	go s.sweepRegistry(ctx)

	leadDone := make(chan struct{})
	go func() {
		defer close(leadDone)
		s.leadLoop(ctx)
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("api server stopped: %w", err)
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.http.Shutdown(shutCtx)
	_ = s.chttp.Shutdown(shutCtx)
	<-leadDone
	_ = s.registry.Close()
	if rerr := s.raft.Shutdown(); rerr != nil && err == nil {
		err = fmt.Errorf("stop raft: %w", rerr)
	}
	return err
}

// leadLoop runs the leader's duties for as long as this manager leads.
func (s *Server) leadLoop(ctx context.Context) {
	for ctx.Err() == nil {
		if err := s.raft.WaitLeader(ctx); err != nil {
			return
		}
		if !s.raft.IsLeader() {
			continue
		}
		s.lead(ctx)
	}
}

// heartbeatTTL is the TTL agents are told: the node monitor's while this
// manager leads (heartbeats and registrations are served by the leader),
// the configured one otherwise.
func (s *Server) heartbeatTTL() time.Duration {
	if m := s.monitor.Load(); m != nil {
		return m.TTL()
	}
	return s.cfg.HeartbeatTTL
}

// lead runs controllers until leadership is lost or ctx is done.
func (s *Server) lead(ctx context.Context) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.raft.Barrier(lctx); err != nil {
		s.log.Warn("raft barrier failed after election", "err", err)
		return
	}
	s.log.Info("leading the cluster")
	if err := s.takeOffice(lctx); err != nil {
		s.log.Warn("could not record this manager in the cluster", "err", err)
	}
	var wg sync.WaitGroup
	rec := controller.NewReconciler(s.store, s, s, s.clock, s.log.With("component", "reconciler"))
	rec.OnPass = s.metrics.countPass
	mon := controller.NewNodeMonitor(s.store, s, s.beats, s.clock, s.cfg.HeartbeatTTL, s.log.With("component", "nodes"))
	s.monitor.Store(mon)
	defer s.monitor.CompareAndSwap(mon, nil)
	for _, run := range []func(context.Context) error{rec.Run, mon.Run, s.collectImages} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = run(lctx)
		}()
	}
	for s.raft.IsLeader() && lctx.Err() == nil {
		select {
		case <-lctx.Done():
		case <-s.raft.LeaderCh():
		}
	}
	cancel()
	wg.Wait()
	s.log.Info("leadership ended")
}

// Commit encodes a state command, applies it through Raft and returns the
// FSM's result (an error when the FSM rejected it).
func (s *Server) Commit(ctx context.Context, cmd state.Command) (any, error) {
	b, err := state.Encode(cmd)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := s.raft.Apply(ctx, b)
	s.metrics.applySeconds.Observe(time.Since(start).Seconds())
	return res, err
}

func loadOrCreateID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return id, nil
}
