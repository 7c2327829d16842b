package raftnode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// handshakeTimeout bounds a TLS handshake on an accepted connection, so a
// peer that connects and says nothing does not hold a goroutine forever.
const handshakeTimeout = 10 * time.Second

// newTransport listens on cfg.BindAddr and advertises cfg.AdvertiseAddr,
// or the bound address when none is given. With cfg.TLS it speaks mutual
// TLS, otherwise plain TCP.
func newTransport(cfg Config, hlog hclog.Logger) (*raft.NetworkTransport, error) {
	var advertise net.Addr
	if cfg.AdvertiseAddr != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("raft advertise address %q: %w", cfg.AdvertiseAddr, err)
		}
		advertise = a
	}
	if cfg.TLS == nil {
		t, err := raft.NewTCPTransportWithLogger(cfg.BindAddr, advertise, maxPool, transportTimeout, hlog.Named("transport"))
		if err != nil {
			return nil, fmt.Errorf("listen for raft on %s: %w", cfg.BindAddr, err)
		}
		return t, nil
	}
	// A copy: the caller may go on changing its config; rotating
	// certificates goes through its GetCertificate callbacks instead.
	stream, err := listenTLS(cfg.BindAddr, advertise, cfg.TLS.Clone())
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithLogger(stream, maxPool, transportTimeout, hlog.Named("transport")), nil
}

// tlsStreamLayer is a raft.StreamLayer speaking mutual TLS: it accepts only
// peers whose client certificate the config's ClientCAs signed, and dials
// only peers whose server certificate its RootCAs signed.
type tlsStreamLayer struct {
	net.Listener // the plain TCP listener
	advertise    net.Addr
	config       *tls.Config
	// handshakeTimeout bounds each accepted connection's handshake.
	handshakeTimeout time.Duration
}

var _ raft.StreamLayer = (*tlsStreamLayer)(nil)

func listenTLS(bindAddr string, advertise net.Addr, config *tls.Config) (*tlsStreamLayer, error) {
	ln, err := net.Listen("tcp", bindAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for raft on %s: %w", bindAddr, err)
	}
	s := &tlsStreamLayer{Listener: ln, advertise: advertise, config: config, handshakeTimeout: handshakeTimeout}
	if a, ok := s.Addr().(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %s cannot be dialled by other servers; set an advertise address", s.Addr())
	}
	return s, nil
}

// Accept returns the next connection. Its handshake runs on first use, in
// the transport's per-connection goroutine, so one slow or hostile peer
// cannot stall the accept loop (raft backs off on Accept errors).
func (s *tlsStreamLayer) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: tls.Server(c, s.config), timeout: s.handshakeTimeout}, nil
}

// Addr is the address other servers dial.
func (s *tlsStreamLayer) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.Listener.Addr()
}

// Dial connects to a peer and completes the handshake. The server name
// checked against the peer's certificate is the config's ServerName when
// set (a name every manager certificate carries), else the address's host.
func (s *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(address), s.config)
	if err != nil {
		return nil, fmt.Errorf("dial raft peer %s over TLS: %w", address, err)
	}
	return c, nil
}

// serverConn is an accepted TLS connection whose handshake is bounded by
// timeout and whose failure names the peer.
type serverConn struct {
	*tls.Conn
	timeout time.Duration
	once    sync.Once
	err     error
}

func (c *serverConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		if err := c.HandshakeContext(ctx); err != nil {
			c.err = fmt.Errorf("refused raft connection from %s: %w", c.RemoteAddr(), err)
		}
	})
	return c.err
}

func (c *serverConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *serverConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// checkTLS refuses a config that would not give mutual TLS: raft traffic
// carries the whole cluster state, so a half-configured TLS must fail at
// start rather than silently accept anyone or trust the system roots.
func checkTLS(c *tls.Config) error {
	switch {
	case len(c.Certificates) == 0 && c.GetCertificate == nil:
		return errors.New("raft: the TLS config has no certificate for this server")
	case len(c.Certificates) == 0 && c.GetClientCertificate == nil:
		return errors.New("raft: the TLS config has no client certificate to dial other servers with")
	case c.ClientAuth != tls.RequireAndVerifyClientCert || c.ClientCAs == nil:
		return errors.New("raft: the TLS config must require and verify client certificates against the cluster CA (ClientAuth and ClientCAs)")
	case c.RootCAs == nil:
		return errors.New("raft: the TLS config needs the cluster CA in RootCAs to verify the servers it dials")
	}
	return nil
}
