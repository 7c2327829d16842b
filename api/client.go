package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// DefaultAddr is where the CLI looks for a manager when neither --addr nor
// BERTH_ADDR says otherwise.
const DefaultAddr = "http://127.0.0.1:7700"

// ErrNotFound is matched (errors.Is) by a 404 answer.
var ErrNotFound = errors.New("not found")

// Error is an error answer of the API.
type Error struct {
	Status  int
	Message string
	Field   string
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, ErrNotFound) true for 404 answers.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// QueryOptions make a list call a blocking query.
type QueryOptions struct {
	Index uint64        // answer only once the store is past this index
	Wait  time.Duration // but no later than this (server caps it at 5m)
}

// QueryMeta comes back with every list answer.
type QueryMeta struct {
	Index uint64
}

// TaskQuery filters ListTasks.
type TaskQuery struct {
	App     string
	Service string
	Node    string
	QueryOptions
}

// Client talks to one manager, failing over to the others it knows (see
// SetAddrs). Every request has a deadline; see WithTimeouts.
type Client struct {
	http  *http.Client
	token string

	mu sync.Mutex
	// addrs are the managers this client may use, the one in use first;
	// a request that cannot reach it tries the next (see SetAddrs).
	addrs []string
	// timeout bounds one attempt; retryFor the retries of a request.
	timeout, retryFor time.Duration
	// abandon holds, per manager, a channel closed when the client fails
	// over from it, to cancel the requests still waiting on it.
	abandon map[string]chan struct{}
	// lastAnswer holds, per manager, when it last answered a request: one
	// that answers is slow, not gone (see try).
	lastAnswer map[string]time.Time
}

// NewClient returns a client for a manager at addr ("http://host:port" or
// "host:port").
func NewClient(addr string, opts ...ClientOption) *Client {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	c := &Client{addrs: []string{strings.TrimRight(addr, "/")}, http: &http.Client{},
		timeout: DefaultTimeout, retryFor: DefaultRetryFor, abandon: map[string]chan struct{}{},
		lastAnswer: map[string]time.Time{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithFallbacks gives the client other managers to fail over to, as
// SetAddrs does after it is made.
func WithFallbacks(hostports []string) ClientOption {
	return func(c *Client) { c.SetAddrs(hostports) }
}

// Addr is the manager address the client uses now.
func (c *Client) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrs[0]
}

// SetAddrs gives the client other managers ("host:port", same scheme as
// the first) to fail over to when the one in use cannot be reached. The
// one in use stays first if it is among them.
func (c *Client) SetAddrs(hostports []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.addrs[0]
	scheme := cur[:strings.Index(cur, "://")+3]
	out := []string{cur}
	for _, hp := range hostports {
		if a := scheme + hp; a != cur && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	c.addrs = out
}

// base is the address to use now.
func (c *Client) base() string { return c.Addr() }

// failover moves to the next manager after from could not answer, and
// cancels the requests still waiting on from: they go to the next one too.
func (c *Client) failover(from string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.addrs) > 1 && c.addrs[0] == from {
		c.addrs = append(c.addrs[1:], from)
		if ch, ok := c.abandon[from]; ok {
			close(ch)
			delete(c.abandon, from)
		}
	}
}

// Status asks the manager who it is.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	_, err := c.do(ctx, http.MethodGet, PathStatus, nil, nil, &s)
	return &s, err
}

// SubmitApp creates or updates an app.
func (c *Client) SubmitApp(ctx context.Context, app *types.App) (*SubmitResponse, error) {
	var r SubmitResponse
	_, err := c.do(ctx, http.MethodPut, fill(PathApp, app.Name), nil, app, &r)
	return &r, err
}

// GetApp returns one app; errors.Is(err, ErrNotFound) when there is none.
func (c *Client) GetApp(ctx context.Context, name string) (*types.App, error) {
	var a types.App
	_, err := c.do(ctx, http.MethodGet, fill(PathApp, name), nil, nil, &a)
	return &a, err
}

// ListApps returns every app.
func (c *Client) ListApps(ctx context.Context) ([]*types.App, error) {
	var as []*types.App
	_, err := c.do(ctx, http.MethodGet, PathApps, nil, nil, &as)
	return as, err
}

// DeleteApp asks for an app's removal (`down`); removal completes
// asynchronously, when GetApp answers ErrNotFound.
func (c *Client) DeleteApp(ctx context.Context, name string, volumes bool) error {
	return c.DeleteAppWith(ctx, name, DeleteOptions{Volumes: volumes})
}

// Scale sets a replicated service's replica count.
func (c *Client) Scale(ctx context.Context, app, service string, replicas int) error {
	_, err := c.do(ctx, http.MethodPost, fill(PathScale, app, service), nil, ScaleRequest{Replicas: replicas}, nil)
	return err
}

// ListTasks lists tasks, optionally as a blocking query.
func (c *Client) ListTasks(ctx context.Context, q TaskQuery) ([]*types.Task, QueryMeta, error) {
	v := q.values()
	if q.App != "" {
		v.Set("app", q.App)
	}
	if q.Service != "" {
		v.Set("service", q.Service)
	}
	if q.Node != "" {
		v.Set("node", q.Node)
	}
	var ts []*types.Task
	meta, err := c.do(ctx, http.MethodGet, PathTasks, v, nil, &ts)
	return ts, meta, err
}

// GetTask returns one task.
func (c *Client) GetTask(ctx context.Context, id string) (*types.Task, error) {
	var t types.Task
	_, err := c.do(ctx, http.MethodGet, fill(PathTask, id), nil, nil, &t)
	return &t, err
}

// TaskLogs streams a task's output (stdout and stderr merged, line by line).
// The caller closes the stream; with Follow it ends when ctx is done.
func (c *Client) TaskLogs(ctx context.Context, taskID string, o LogOptions) (io.ReadCloser, error) {
	return c.stream(ctx, fill(PathTaskLogs, taskID), o.values())
}

// ListNodes lists the cluster's nodes.
func (c *Client) ListNodes(ctx context.Context) ([]*types.Node, error) {
	var ns []*types.Node
	_, err := c.do(ctx, http.MethodGet, PathNodes, nil, nil, &ns)
	return ns, err
}

// RegisterNode announces an agent (first start or restart).
func (c *Client) RegisterNode(ctx context.Context, n types.Node) (*RegisterResponse, error) {
	var r RegisterResponse
	_, err := c.do(ctx, http.MethodPost, PathNodeRegister, nil, RegisterRequest{Node: n}, &r)
	return &r, err
}

// Heartbeat tells the manager the node is alive; the answer lists the
// managers' cluster addresses, for the agent to fail over to.
func (c *Client) Heartbeat(ctx context.Context, nodeID string) (*HeartbeatResponse, error) {
	var r HeartbeatResponse
	_, err := c.do(ctx, http.MethodPost, fill(PathHeartbeat, nodeID), nil, struct{}{}, &r)
	return &r, err
}

// NodeTasks returns what a node must run, as a blocking query.
func (c *Client) NodeTasks(ctx context.Context, nodeID string, q QueryOptions) (*NodeTasks, QueryMeta, error) {
	return c.NodeTasksSince(ctx, nodeID, q, 0)
}

// NodeTasksSince is NodeTasks for an agent that holds the whole answer of
// index known (its QueryMeta.Index): the manager may answer with the tasks
// changed since and the order of all (NodeTasks.Known, Order), which the
// agent makes whole with Merge. known 0 asks for the whole list; so does
// a manager that does not know the parameter, and either answer merges.
func (c *Client) NodeTasksSince(ctx context.Context, nodeID string, q QueryOptions, known uint64) (*NodeTasks, QueryMeta, error) {
	var nt NodeTasks
	v := q.values()
	if known > 0 {
		v.Set("known", strconv.FormatUint(known, 10))
	}
	meta, err := c.do(ctx, http.MethodGet, fill(PathNodeTasks, nodeID), v, nil, &nt)
	return &nt, meta, err
}

// ReportStatus sends a batch of observed task states.
func (c *Client) ReportStatus(ctx context.Context, nodeID string, statuses []types.TaskStatus) error {
	_, err := c.do(ctx, http.MethodPost, fill(PathNodeStatus, nodeID), nil, StatusReport{Tasks: statuses}, nil)
	return err
}

// ReportTeardown says the node removed an app's networks (and volumes).
func (c *Client) ReportTeardown(ctx context.Context, nodeID, app string) error {
	_, err := c.do(ctx, http.MethodPost, fill(PathTeardown, nodeID), nil, TeardownDone{App: app}, nil)
	return err
}

func (q QueryOptions) values() url.Values {
	v := url.Values{}
	if q.Index > 0 {
		v.Set("index", strconv.FormatUint(q.Index, 10))
	}
	if q.Wait > 0 {
		v.Set("wait", q.Wait.String())
	}
	return v
}

func (o LogOptions) values() url.Values {
	v := url.Values{}
	if o.Follow {
		v.Set("follow", "true")
	}
	if o.Tail > 0 {
		v.Set("tail", strconv.Itoa(o.Tail))
	}
	if o.Timestamps {
		v.Set("timestamps", "true")
	}
	if !o.Since.IsZero() {
		v.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	if !o.Until.IsZero() {
		v.Set("until", o.Until.UTC().Format(time.RFC3339Nano))
	}
	return v
}

// fill replaces the {placeholders} of a route with escaped values, in order.
func fill(route string, vals ...string) string {
	for _, v := range vals {
		i := strings.IndexByte(route, '{')
		j := strings.IndexByte(route, '}')
		if i < 0 || j < i {
			break
		}
		route = route[:i] + url.PathEscape(v) + route[j+1:]
	}
	return route
}

// stream sends a GET whose answer is a stream the caller reads until it
// ends: the attempt's deadline holds until the answer starts; after that,
// a manager that says it sends heartbeats (HeaderHeartbeat) has the
// stream cut when it sends nothing for three of them.
func (c *Client) stream(ctx context.Context, path string, q url.Values) (io.ReadCloser, error) {
	cl := call{method: http.MethodGet, path: path, query: q, idempotent: true,
		header: http.Header{HeaderHeartbeat: []string{"1"}}}
	a, err := c.roundTrip(ctx, cl)
	if err != nil {
		return nil, err
	}
	resp := a.resp
	if resp.StatusCode >= 300 {
		defer a.cancel()
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	a.timer.Stop()
	return ReadStream(resp, a.cancel), nil
}

func (c *Client) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set(HeaderAuthorization, "Bearer "+c.token)
	}
}

// upload sends a raw body (a snapshot) with POST. It cannot be sent twice
// (the body is read once), so it goes to the manager in use only.
func (c *Client) upload(ctx context.Context, path string, body io.Reader) error {
	return c.uploadJSON(ctx, path, body, func(answer io.Reader) error {
		_, _ = io.Copy(io.Discard, answer)
		return nil
	})
}

// uploadJSON is upload that hands a successful answer's body to read.
func (c *Client) uploadJSON(ctx context.Context, path string, body io.Reader, read func(io.Reader) error) error {
	return c.uploadAs(ctx, http.MethodPost, path, body, http.Header{"Content-Type": {"application/octet-stream"}}, read)
}

// uploadAs is uploadJSON with the method and headers given.
func (c *Client) uploadAs(ctx context.Context, method, path string, body io.Reader, header http.Header, read func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base()+path, body)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	return read(resp.Body)
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb ErrorBody
	if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
		eb.Error = strings.TrimSpace(string(b))
		if eb.Error == "" {
			eb.Error = resp.Status
		}
	}
	return &Error{Status: resp.StatusCode, Message: eb.Error, Field: eb.Field}
}
