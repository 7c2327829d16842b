package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Deadlines of the client, unless WithTimeouts or SetTimeouts say otherwise.
const (
	// DefaultTimeout bounds one attempt of a request: a manager that does
	// not answer within it (frozen, cut off) is left for the next one.
	DefaultTimeout = 30 * time.Second
	// DefaultRetryFor is how long a request that may safely be repeated
	// is retried while managers cannot answer it (an election: 502, 503).
	DefaultRetryFor = 10 * time.Second
	// serverWait is the wait a manager gives a blocking query that names
	// none, and maxServerWait the most it gives any (see the server).
	serverWait    = 60 * time.Second
	maxServerWait = 5 * time.Minute
	// blockingMargin is the least a blocking query's deadline adds to its
	// wait.
	blockingMargin = 10 * time.Second
	// uploadTimeout bounds a snapshot restore, which cannot be repeated.
	uploadTimeout = 10 * time.Minute
)

// HeaderNotApplied on an error answer says the write was certainly not
// done (the manager found no leader to take it), so an answer of 503 does
// not make its outcome unknown.
const HeaderNotApplied = "X-Berth-Not-Applied"

// ErrOutcomeUnknown is matched (errors.Is) by the error of a write whose
// fate the client cannot know: the request reached a manager, which did not
// answer it (it froze, the connection broke, its leader was lost), and it
// could not be safely sent again. The write may or may not have been done.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// outcomeUnknown wraps the last error of a write that may have been done.
type outcomeUnknown struct{ err error }

func (e *outcomeUnknown) Error() string {
	if strings.HasPrefix(e.err.Error(), "outcome unknown") {
		return e.err.Error() // the manager said it already
	}
	return "outcome unknown: the manager did not answer the write, which may or may not have been done (" +
		e.err.Error() + "); check the current state before trying again"
}

func (e *outcomeUnknown) Unwrap() []error { return []error{ErrOutcomeUnknown, e.err} }

// errAbandoned cancels requests in flight to a manager the client failed
// over from: another request found it unresponsive.
var errAbandoned = errors.New("the client moved on to another manager")

// call is one API request.
type call struct {
	method, path string
	query        url.Values
	body         []byte
	// idempotent requests may be sent again when an attempt's fate is
	// unknown: doing them twice is the same as once.
	idempotent bool
	// wait is how long the manager may hold a blocking query's answer.
	wait   time.Duration
	header http.Header
}

// attempt is the outcome of sending a call once to one manager.
type attempt struct {
	resp *http.Response
	err  error
	// sent: the request reached the manager whole, so it may have acted.
	sent bool
	// timer cancels the attempt when it fires: at its deadline, or, for a
	// stream, when nothing came for a while (see idleBody).
	timer *time.Timer
	// cancel ends the attempt; the caller calls it once done with resp.
	cancel func()
}

// roundTrip sends cl to the managers until one answers it, failing over
// and retrying as far as cl allows:
//   - a manager that cannot be dialled, or does not answer in time, is left
//     for the next one;
//   - 502, 503 and 504 (no leader: an election) are retried, on the next
//     manager, after a short pause;
//   - a request that may have reached a manager is sent again only if it
//     is idempotent; a write that cannot be fails with ErrOutcomeUnknown,
//     and so does an idempotent one whose retries run out after such an
//     attempt;
//   - retries stop after retryFor, or after one round of managers that
//     all refused the connection (nothing to wait for).
//
// On success the caller must close the body and call the attempt's cancel.
func (c *Client) roundTrip(ctx context.Context, cl call) (attempt, error) {
	timeout, retryFor := c.timeouts()
	limit := timeout
	if cl.wait > 0 {
		// Room for a loaded manager to answer once the wait ends; a
		// frozen one is found sooner by the client's other requests
		// (heartbeats), which then move this one (see failover).
		limit = cl.wait + max(timeout, blockingMargin)
	}
	r := &retrier{cl: cl, write: cl.method != http.MethodGet, until: time.Now().Add(retryFor), pause: 50 * time.Millisecond}
	for {
		base := c.base()
		a := c.try(ctx, base, cl, limit)
		if a.err == nil && a.resp.StatusCode < 500 {
			if r.maybeDone && cl.method == http.MethodDelete && a.resp.StatusCode == http.StatusNotFound {
				a.resp.StatusCode = http.StatusOK // an earlier attempt did remove it
			}
			return a, nil
		}
		if ctx.Err() != nil {
			r.maybeDone = r.maybeDone || a.sent
			return attempt{}, r.fail(ctx.Err())
		}
		c.failover(base)
		var again, pause bool
		if a.err == nil {
			again, pause = r.answered(a)
		} else {
			again, pause = r.failed(a, c.numAddrs())
		}
		// A manager that refused the connection never saw the request:
		// the next one is tried, whatever the time.
		if !again || r.refused == 0 && time.Now().After(r.until) {
			return attempt{}, r.fail(r.lastErr)
		}
		if pause {
			if !SleepCtx(ctx, r.pause) {
				return attempt{}, r.fail(ctx.Err())
			}
			r.pause = min(2*r.pause, time.Second)
		}
	}
}

// retrier is what roundTrip knows of a call's attempts so far.
type retrier struct {
	cl        call
	write     bool
	until     time.Time
	pause     time.Duration
	maybeDone bool // an earlier attempt may have done the write
	lastErr   error
	refused   int // attempts in a row that found nothing listening
}

func (r *retrier) fail(err error) error {
	if r.maybeDone && r.write {
		return &outcomeUnknown{err: err}
	}
	return err
}

// answered judges an error answer (5xx): whether to try again, and after
// a pause.
func (r *retrier) answered(a attempt) (again, pause bool) {
	r.lastErr = decodeError(a.resp)
	a.resp.Body.Close()
	a.cancel()
	switch a.resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
	default:
		return false, false // an answer, if an unhappy one
	}
	// The manager tried, unless it says otherwise: a leader may have
	// taken the write before it was lost.
	r.maybeDone = r.maybeDone || r.write && a.resp.Header.Get(HeaderNotApplied) == ""
	r.refused = 0
	return !r.write || r.cl.idempotent, true
}

// failed judges an attempt that got no answer, among managers managers.
func (r *retrier) failed(a attempt, managers int) (again, pause bool) {
	r.lastErr = a.err
	if NeverSent(a.err) {
		r.refused++
		return r.refused < managers, false
	}
	r.refused = 0
	r.maybeDone = r.maybeDone || a.sent
	return transient(a.err) && !(a.sent && r.write && !r.cl.idempotent), false
}

// errNoAnswer is the cause of an attempt that ran out of time.
type errNoAnswer struct {
	base  string
	after time.Duration
}

func (e *errNoAnswer) Error() string {
	return fmt.Sprintf("the manager at %s did not answer within %s", e.base, e.after)
}

// try sends cl once to base. The attempt is cancelled once base has been
// silent for timeout, or as soon as the client fails over from base
// (another request found it unresponsive).
//
// Silent means no answer to any of the client's requests: a manager that
// answered one within the last timeout is alive but slow, and the attempt
// waits for it, up to slowFor past its deadline. Cancelling it instead
// gains nothing (the manager would be left for another just as loaded)
// and costs much: over HTTP/1.1 a cancelled request closes its
// connection, and failing over abandons every other request in flight
// there, so each agent dialled three or four new TLS connections at once.
// At 1,000 sim nodes that turned a busy leader into a storm of handshakes
// that timed out themselves, and nodes were marked down by the hundred.
func (c *Client) try(ctx context.Context, base string, cl call, timeout time.Duration) attempt {
	actx, cancel := context.WithCancelCause(ctx)
	// latest is when the attempt ends even if base still answers others.
	latest := time.Now().Add(timeout + slowFor(c.timeouts()))
	var timer *time.Timer
	armed := make(chan struct{})
	timer = time.AfterFunc(timeout, func() {
		<-armed
		now := time.Now()
		if heard := c.lastHeard(base); now.Sub(heard) < timeout && now.Before(latest) {
			timer.Reset(min(heard.Add(timeout).Sub(now), latest.Sub(now)))
			return
		}
		cancel(&errNoAnswer{base: base, after: timeout})
	})
	close(armed)
	abandon := c.abandoned(base)
	go func() {
		select {
		case <-abandon:
			cancel(errAbandoned)
		case <-actx.Done():
		}
	}()
	a := attempt{timer: timer, cancel: func() { timer.Stop(); cancel(nil) }}
	var sent atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(w httptrace.WroteRequestInfo) {
		if w.Err == nil {
			sent.Store(true)
		}
	}}
	u := base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var rd io.Reader
	if cl.body != nil {
		rd = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace), cl.method, u, rd)
	if err != nil {
		a.cancel()
		a.err = err
		return a
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range cl.header {
		req.Header[k] = v
	}
	c.authorize(req)
	a.resp, a.err = c.http.Do(req)
	if a.err == nil {
		c.heard(base)
	} else {
		cause := context.Cause(actx)
		a.cancel()
		if ctx.Err() == nil && cause != nil && !errors.Is(a.err, cause) {
			a.err = fmt.Errorf("%w: %w", cause, a.err)
		}
		a.sent = sent.Load() && !NeverSent(a.err)
	}
	return a
}

// NeverSent reports whether err means the request never left (nothing
// listens, no route), whatever the trace saw. Clients and forwarding
// managers retry by it.
func NeverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// transient reports whether err may pass with a retry or another
// manager: no answer in time, a connection that broke. A refused TLS
// handshake, a certificate of another cluster, a port that is not TLS will
// not.
func transient(err error) bool {
	var (
		ne     *errNoAnswer
		op     *net.OpError
		alert  tls.AlertError
		header tls.RecordHeaderError
		verify *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &ne), errors.Is(err, errAbandoned):
		return true
	case errors.As(err, &alert), errors.As(err, &header), errors.As(err, &verify):
		return false
	case errors.As(err, &op), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}

// slowFor is how long past its deadline an attempt waits for a manager
// that still answers other requests: three attempts' worth, at most the
// retries' span (an agent: 11.25 s at the default 15 s heartbeat TTL,
// within which a heartbeat still counts).
func slowFor(attempt, retryFor time.Duration) time.Duration {
	return min(3*attempt, max(retryFor, attempt))
}

// heard notes that base answered a request just now.
func (c *Client) heard(base string) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastAnswer[base] = now
}

// lastHeard is when base last answered one of the client's requests (the
// zero time if never).
func (c *Client) lastHeard(base string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastAnswer[base]
}

func (c *Client) numAddrs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.addrs)
}

func (c *Client) timeouts() (attempt, retryFor time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timeout, c.retryFor
}

// SetTimeouts changes how long one attempt of a request may take and how
// long a request that may be repeated is retried (see WithTimeouts).
func (c *Client) SetTimeouts(attempt, retryFor time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timeout, c.retryFor = attempt, retryFor
}

// WithTimeouts bounds one attempt of a request (a blocking query's attempt
// gets its wait on top) and how long a request that may be repeated is
// retried across managers; see DefaultTimeout and DefaultRetryFor.
func WithTimeouts(attempt, retryFor time.Duration) ClientOption {
	return func(c *Client) { c.timeout, c.retryFor = attempt, retryFor }
}

// abandoned returns the channel closed when the client fails over from
// base.
func (c *Client) abandoned(base string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.abandon[base]
	if !ok {
		ch = make(chan struct{})
		c.abandon[base] = ch
	}
	return ch
}

// do sends a JSON call and decodes the answer into out.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) (QueryMeta, error) {
	cl := call{method: method, path: path, query: q, idempotent: Idempotent(method, path)}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return QueryMeta{}, fmt.Errorf("encode request: %w", err)
		}
		cl.body = b
	}
	if method == http.MethodGet && q.Get("index") != "" {
		cl.wait = serverWait
		if w, err := time.ParseDuration(q.Get("wait")); err == nil && w > 0 {
			cl.wait = min(w, maxServerWait)
		}
	}
	a, err := c.roundTrip(ctx, cl)
	if err != nil {
		return QueryMeta{}, err
	}
	defer a.cancel()
	resp := a.resp
	defer resp.Body.Close()
	meta := QueryMeta{}
	meta.Index, _ = strconv.ParseUint(resp.Header.Get(HeaderIndex), 10, 64)
	if resp.StatusCode >= 300 {
		return meta, decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return meta, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return meta, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	// Read the answer to its end (the encoder's newline): net/http reuses
	// a connection only for a body read to EOF before Close, and without
	// this every call opened a new TLS connection (100 sim nodes: 1,140 in
	// a 10 s deploy, a fifth of the leader's CPU in handshakes).
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	return meta, nil
}

// drainLimit bounds what is read past a decoded answer so its connection
// can be reused; an answer with more than that after it is not worth it.
const drainLimit = 4 << 10

// Idempotent tells the requests that may be sent twice with the effect of
// once: reads, and writes that set a state (an app's spec, a replica
// count, a node's availability) or report one (heartbeats, task states).
// Joining (a new certificate each time), rotating a token and restoring a
// snapshot are not. Clients and forwarding managers retry by this rule.
func Idempotent(method, path string) bool {
	switch method {
	case http.MethodGet, http.MethodPut, http.MethodDelete:
		return true
	case http.MethodPost:
		switch path {
		case PathJoin, PathTokenRotate, PathSnapshot:
			return false
		}
		return !oneShot(path) // lifecycle.go
	}
	return false
}

// SleepCtx waits d; it returns false if ctx ended first. Whoever retries
// (this client, the agent, a manager forwarding to its leader) waits with
// it, so a shutdown never waits out a pause.
func SleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
