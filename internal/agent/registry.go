package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/pki"
)

// The pull-through endpoint lets the node's Docker engine pull the images
// the CLI pushed to the managers' registry. The engine talks plain HTTP to
// a registry on loopback, so it pulls "127.0.0.1:7703/app/web@sha256:..."
// and the reference names no manager: the endpoint sends each request to a
// manager that answers, over mutual TLS with the node's certificate, which
// is what the managers' registry admits for pulls. It forwards reads only
// (GET, HEAD under /v2/), to managers of the node's cluster only: the TLS
// handshake checks the server is a manager of the cluster CA.

// DefaultRegistryPort is where the endpoint listens on the host's loopback.
const DefaultRegistryPort = 7703

const (
	// maxRegistryPath bounds a request's path: repository names and
	// digests are short.
	maxRegistryPath = 2048
	// maxErrorBody bounds what is kept of a manager's refusal, to relay it
	// when no other manager does better.
	maxErrorBody = 64 << 10
	// avoidFor is how long a manager that failed is tried after the others.
	avoidFor = 30 * time.Second
)

// registryProxy forwards the engine's pulls to the managers.
type registryProxy struct {
	// managers returns the managers' cluster addresses (host:port).
	managers  func() []string
	transport http.RoundTripper
	log       *slog.Logger

	mu sync.Mutex
	// failed holds when each manager last failed a request; such a one
	// is tried after the others for avoidFor.
	failed map[string]time.Time
}

func newRegistryProxy(live *pki.Live, managers func() []string, log *slog.Logger) *registryProxy {
	tr := &http.Transport{
		// Only a manager of the cluster passes this handshake.
		TLSClientConfig: live.ClientTLS(pki.RoleManager.ServerName()),
		// No Proxy: a request goes to a manager and nowhere else, whatever
		// HTTPS_PROXY says.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &registryProxy{managers: managers, transport: tr, log: log, failed: map[string]time.Time{}}
}

func (p *registryProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		registryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED",
			"the agent's registry endpoint only pulls (GET, HEAD); push with berth up, which sends images to a manager")
		return
	}
	if msg := checkRegistryPath(r.URL.Path); msg != "" {
		registryError(w, http.StatusNotFound, "NAME_INVALID", msg)
		return
	}
	p.forward(w, r)
}

// checkRegistryPath returns why a path is not one to forward ("" if it is).
func checkRegistryPath(p string) string {
	switch {
	case len(p) > maxRegistryPath:
		return fmt.Sprintf("path longer than %d bytes", maxRegistryPath)
	case p != "/v2" && !strings.HasPrefix(p, "/v2/"):
		return "only the registry API under /v2/ is served here"
	case path.Clean(p) != strings.TrimSuffix(p, "/") && p != "/v2/":
		return "the path must be clean (no . or .. segments, no //)"
	}
	return ""
}

// refusal is a manager's answer that another manager may better (404, 5xx).
type refusal struct {
	status int
	header http.Header
	body   []byte
}

// forward tries each manager in turn until one answers with something
// other than a dial error, 404 or 5xx, and streams that answer. When none
// does, the last refusal is relayed (a 404 from every manager is the
// image being nowhere), or 503 when no manager could be reached.
func (p *registryProxy) forward(w http.ResponseWriter, r *http.Request) {
	var last *refusal
	var dialErrs []string
	for _, m := range p.order() {
		resp, err := p.roundTrip(r, m)
		if err != nil {
			if r.Context().Err() != nil {
				return // the engine gave up; nobody to answer
			}
			p.markFailed(m)
			dialErrs = append(dialErrs, fmt.Sprintf("%s: %v", m, err))
			continue
		}
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500 {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				p.markFailed(m)
			}
			last = &refusal{status: resp.StatusCode, header: resp.Header, body: body}
			continue
		}
		p.relay(w, r, m, resp)
		return
	}
	if last != nil {
		copyHeader(w.Header(), last.header)
		w.Header().Del("Content-Length") // the body kept may be cut short
		w.WriteHeader(last.status)
		_, _ = w.Write(last.body)
		return
	}
	msg := "no manager of the cluster is known to this agent"
	if len(dialErrs) > 0 {
		msg = "no manager of the cluster answers: " + strings.Join(dialErrs, "; ")
	}
	p.log.Warn("registry endpoint: no manager answers", "path", r.URL.Path, "err", msg)
	registryError(w, http.StatusServiceUnavailable, "UNAVAILABLE", msg)
}

// roundTrip sends the engine's request to manager m, with the engine's
// headers but for hop-by-hop ones and credentials: the node's certificate
// is what authenticates it.
func (p *registryProxy) roundTrip(r *http.Request, m string) (*http.Response, error) {
	u := "https://" + m + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u, nil)
	if err != nil {
		return nil, err
	}
	copyHeader(out.Header, r.Header)
	out.Header.Del("Authorization")
	out.Header.Del("Cookie")
	return p.transport.RoundTrip(out)
}

// relay streams a manager's answer to the engine as it comes: a blob is
// never held in memory or on disk here.
func (p *registryProxy) relay(w http.ResponseWriter, r *http.Request, m string, resp *http.Response) {
	defer resp.Body.Close()
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, resp.Body); err != nil && r.Context().Err() == nil {
		// Too late to fail over: the engine retries the download, and the
		// retry goes to another manager first.
		p.markFailed(m)
		p.log.Warn("registry endpoint: a manager's answer broke off", "manager", m, "path", r.URL.Path, "err", err)
	}
}

// order is the managers to try: those that did not fail lately first, in
// the order the cluster gave them.
func (p *registryProxy) order() []string {
	ms := slices.Clone(p.managers())
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for m, at := range p.failed {
		if now.Sub(at) > avoidFor {
			delete(p.failed, m)
		}
	}
	slices.SortStableFunc(ms, func(a, b string) int {
		_, fa := p.failed[a]
		_, fb := p.failed[b]
		switch {
		case fa == fb:
			return 0
		case fb:
			return -1
		}
		return 1
	})
	return ms
}

func (p *registryProxy) markFailed(m string) {
	p.mu.Lock()
	p.failed[m] = time.Now()
	p.mu.Unlock()
}

// hopHeaders are not forwarded by a proxy (RFC 9110, 7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		if !slices.Contains(hopHeaders, http.CanonicalHeaderKey(k)) {
			dst[k] = slices.Clone(vs)
		}
	}
}

// registryError answers in the registry API's error format, which the
// engine shows to whoever pulled.
func registryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": code, "message": msg}},
	})
}

// listenRegistry opens the endpoint's listener on addr, which must be on
// loopback: the endpoint asks for no credential, so anyone who can reach
// it can read the cluster's images.
func listenRegistry(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("registry endpoint address %q: want 127.0.0.1:PORT: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("registry endpoint address %q is not on loopback: the endpoint needs no credential, so it must only be reachable from this host", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("the registry endpoint's port %s is in use (another agent on this host?): give another --registry-port, or 0 to turn the endpoint off: %w", addr, err)
		}
		return nil, fmt.Errorf("listen for the registry endpoint on %s: %w", addr, err)
	}
	return ln, nil
}

// serveRegistry serves the endpoint on ln until ctx is done.
func (a *Agent) serveRegistry(ctx context.Context, wg *sync.WaitGroup, ln net.Listener) {
	proxy := newRegistryProxy(a.live, a.managerAddrs, a.log.With("component", "registry-endpoint"))
	srv := &http.Server{
		Handler:           proxy,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		// The engine tries HTTPS before plain HTTP on an insecure
		// registry: its handshake is noise, not news.
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("registry endpoint stopped", "err", err)
		}
	})
	wg.Go(func() {
		<-ctx.Done()
		_ = srv.Close()
	})
}

// managerAddrs is the managers' cluster addresses as last learned, or the
// one the agent joined through when it has learned none yet.
func (a *Agent) managerAddrs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.managers) > 0 {
		return slices.Clone(a.managers)
	}
	return []string{a.managerAddr}
}
