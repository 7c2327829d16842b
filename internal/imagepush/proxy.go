package imagepush

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Proxy is a plain-HTTP registry endpoint on this machine's loopback that
// forwards every /v2/ request to the cluster's registry.
type Proxy struct {
	target *url.URL
	rt     http.RoundTripper
	ln     net.Listener
	srv    *http.Server

	mu   sync.Mutex
	fail *Refusal // the last refusal the registry answered
	// refused is closed on a refusal that retrying cannot mend (a 4xx),
	// so Push stops the engine instead of waiting out its retries.
	refused chan struct{}
	// repos are the repositories pushed through this proxy so far: a
	// layer the next image shares with one of them (its base, say) is
	// mounted from there, not sent again (RawPush).
	repos []string
}

// pushedTo records repo as holding what was just pushed to it.
func (p *Proxy) pushedTo(repo string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.Contains(p.repos, repo) {
		p.repos = append(p.repos, repo)
	}
}

// mountable are the repositories a blob of repo may be mounted from.
func (p *Proxy) mountable(repo string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(p.repos), func(r string) bool { return r == repo })
}

// checkTimeout bounds the first question to the registry.
const checkTimeout = 30 * time.Second

// Start checks that target (a manager's API base URL, "https://host:port")
// serves a registry that takes this client's pushes, then listens on
// 127.0.0.1 on a free port. Every request it forwards goes through rt.
// An older manager (404 on /v2/) gives ErrNoRegistry; a refused credential
// a *Refusal.
func Start(ctx context.Context, target string, rt http.RoundTripper) (*Proxy, error) {
	u, err := url.Parse(strings.TrimRight(target, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("registry address %q is not a URL", target)
	}
	p := &Proxy{target: u, rt: rt}
	if err := p.check(ctx); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback for the registry proxy: %w", err)
	}
	p.ln = ln
	p.srv = &http.Server{Handler: p.handler(), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = p.srv.Serve(ln) }() // ends with Close
	return p, nil
}

// Host is the proxy's "127.0.0.1:port", the registry part of the tags the
// engine pushes.
func (p *Proxy) Host() string { return p.ln.Addr().String() }

// Close stops the proxy and the requests it still forwards.
func (p *Proxy) Close() error { return p.srv.Close() }

// check asks GET /v2/ (the registry's version check) through rt.
func (p *Proxy) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.target.String()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := p.rt.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("reach the cluster registry at %s: %w", p.target.Host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("the manager at %s answered 404 on /v2/: %w", p.target.Host, ErrNoRegistry)
	}
	return refusal(http.MethodGet, "/v2/", resp.StatusCode, body)
}

func (p *Proxy) handler() http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.target)
			pr.Out.Header.Del("Authorization") // the transport's credential, never the engine's
		},
		Transport:      p.rt,
		ModifyResponse: p.inspect,
		ErrorHandler:   p.unreachable,
		// Blob uploads stream; flush as data comes.
		FlushInterval: -1,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2" && !strings.HasPrefix(r.URL.Path, "/v2/") {
			http.NotFound(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	})
}

// inspect points the registry's upload locations back at the proxy and
// keeps the registry's words when it refuses something, so a failed push
// says why in Push's error (the engine's message loses them).
func (p *Proxy) inspect(resp *http.Response) error {
	if loc := resp.Header.Get("Location"); loc != "" {
		resp.Header.Set("Location", p.local(loc))
	}
	if !isRefusal(resp) {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return err
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	p.record(refusal(resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, body))
	return nil
}

func (p *Proxy) record(r *Refusal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = r
	if r.Status < 500 && p.refused != nil {
		select {
		case <-p.refused:
		default:
			close(p.refused)
		}
	}
}

// begin forgets the last push's refusals and returns the channel closed
// on a final one of the next. Pushes through one proxy go one at a time.
func (p *Proxy) begin() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail, p.refused = nil, make(chan struct{})
	return p.refused
}

// isRefusal: an answer that fails the push. A 404 is how the registry says
// "I lack this blob or manifest" while the engine checks what to send; a
// 416 is a range the engine asks about while resuming.
func isRefusal(resp *http.Response) bool {
	switch {
	case resp.StatusCode < 400:
		return false
	case resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return resp.Request.URL.Path == "/v2/"
	}
	return true
}

// local makes a Location on the registry's host relative, so the engine
// sends the next part of an upload to the proxy and not to the manager
// (which it could not reach in plain HTTP, nor with the credential).
func (p *Proxy) local(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || !u.IsAbs() || u.Host != p.target.Host {
		return loc
	}
	return u.RequestURI()
}

func (p *Proxy) unreachable(w http.ResponseWriter, r *http.Request, err error) {
	p.record(&Refusal{Method: r.Method, Path: r.URL.Path, Status: http.StatusBadGateway,
		Message: fmt.Sprintf("cannot reach the cluster registry at %s: %v", p.target.Host, err), unreachable: true})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadGateway)
	fmt.Fprintf(w, `{"errors":[{"code":"UNAVAILABLE","message":%q}]}`, "the cluster registry cannot be reached")
}

// lastRefusal is the registry's last refusal, nil when it refused nothing.
func (p *Proxy) lastRefusal() *Refusal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fail
}

// errors.Is target for a manager without a registry.
var ErrNoRegistry = errors.New("the manager has no image registry")
