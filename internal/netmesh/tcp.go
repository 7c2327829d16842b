package netmesh

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

type tcpRoute struct {
	ln   *net.TCPListener
	pl   *pool
	cfg  *ProxyConfig
	sem  chan struct{}
	mu   sync.Mutex
	r    Route
	stop context.CancelFunc
	ctx  context.Context
}

func startTCP(ln *net.TCPListener, r Route, pl *pool, cfg *ProxyConfig) *tcpRoute {
	ctx, cancel := context.WithCancel(context.Background())
	t := &tcpRoute{ln: ln, pl: pl, cfg: cfg, sem: make(chan struct{}, cfg.MaxConns), r: r, ctx: ctx, stop: cancel}
	go t.serve()
	return t
}

func (t *tcpRoute) addr() net.Addr { return t.ln.Addr() }
func (t *tcpRoute) pool() *pool    { return t.pl }
func (t *tcpRoute) opts() Route    { t.mu.Lock(); defer t.mu.Unlock(); return t.r }
func (t *tcpRoute) setOpts(r Route) {
	t.mu.Lock()
	t.r = r
	t.mu.Unlock()
}

func (t *tcpRoute) close() {
	t.stop()
	_ = t.ln.Close()
	t.pl.closeAll()
}

func (t *tcpRoute) serve() {
	for {
		c, err := t.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors or the like: wait, rather than spin.
			select {
			case <-t.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		select {
		case t.sem <- struct{}{}:
			go func() {
				defer func() { <-t.sem }()
				t.handle(c)
			}()
		default:
			_ = c.Close()
		}
	}
}

// handle relays one client connection to a backend, trying the next one
// while a backend refuses.
func (t *tcpRoute) handle(client *net.TCPConn) {
	b, up := t.dial(client)
	if up == nil {
		_ = client.Close()
		return
	}
	defer t.pl.done(b, client)
	if t.opts().ProxyProtocol {
		h := proxyproto.HeaderProxyFromAddrs(2, client.RemoteAddr(), client.LocalAddr())
		if _, err := h.WriteTo(up); err != nil {
			_ = client.Close()
			_ = up.Close()
			return
		}
	}
	relay(client, up)
}

func (t *tcpRoute) dial(client *net.TCPConn) (*backend, *net.TCPConn) {
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	if t.opts().Transparent {
		d.LocalAddr, d.Control = transparentFrom(client)
	}
	tried := map[*backend]bool{}
	for {
		b := t.pl.pick(tried, client)
		if b == nil {
			return nil, nil
		}
		c, err := d.DialContext(t.ctx, "tcp", b.Addr.String())
		if err == nil {
			return b, c.(*net.TCPConn)
		}
		t.pl.failed(b, client)
		tried[b] = true
		if t.ctx.Err() != nil {
			return nil, nil
		}
	}
}

// relay copies both ways between two TCP connections; io.Copy between
// *net.TCPConn lets Go splice in the kernel. A side that ends cleanly is
// passed on as a half-close, so the other side may still answer; an error
// either way ends both.
func relay(a, b *net.TCPConn) {
	var wg sync.WaitGroup
	half := func(dst, src *net.TCPConn) {
		defer wg.Done()
		if _, err := io.Copy(dst, src); err != nil {
			_ = a.Close()
			_ = b.Close()
			return
		}
		_ = dst.CloseWrite()
	}
	wg.Add(2)
	go half(b, a)
	half(a, b)
	wg.Wait()
	_ = a.Close()
	_ = b.Close()
}

// transparentFrom gives a dialer the client's address as source (any
// port: the client's own may be taken on this node), allowed even when it
// is not one of the node's by IP_TRANSPARENT.
func transparentFrom(client *net.TCPConn) (net.Addr, func(string, string, syscall.RawConn) error) {
	from := client.RemoteAddr().(*net.TCPAddr)
	ctl := func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			level, opt := syscall.SOL_IP, syscall.IP_TRANSPARENT
			if from.IP.To4() == nil {
				level, opt = syscall.SOL_IPV6, 75 // IPV6_TRANSPARENT
			}
			serr = syscall.SetsockoptInt(int(fd), level, opt, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}
	return &net.TCPAddr{IP: from.IP}, ctl
}
