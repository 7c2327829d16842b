package api

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"time"
)

// Cluster routes. Join is served on a manager's cluster port (TLS; the
// joining node pins the CA by the fingerprint in its token); members,
// tokens and snapshots on the API port, for admins.
const (
	PathJoin            = "/v1/cluster/join"          // POST JoinRequest -> JoinResponse
	PathMembers         = "/v1/cluster/members"       // GET []Member; POST AddMemberRequest (a joined manager asks to vote)
	PathMember          = "/v1/cluster/members/{id}"  // DELETE: remove a manager from the Raft group
	PathTokens          = "/v1/cluster/tokens"        // GET Tokens
	PathTokenRotate     = "/v1/cluster/tokens/rotate" // POST RotateRequest -> Tokens
	PathSnapshot        = "/v1/snapshot"              // GET: stream a snapshot; POST: restore one (body)
	HeaderAuthorization = "Authorization"             // "Bearer <admin token>"
)

// JoinRequest is a node asking to join with a token: it sends a CSR for
// the key it keeps, and gets a certificate signed by the cluster CA.
type JoinRequest struct {
	Token string `json:"token"`
	Role  string `json:"role"` // "worker" or "manager"; must match the token
	Name  string `json:"name"`
	CSR   []byte `json:"csr"` // PEM
	// Labels of a joining worker (its --label flags). They are recorded
	// with the node at join, the only time a node names its own labels;
	// afterwards only `berth node label` changes them.
	Labels map[string]string `json:"labels,omitempty"`
	// Managers only: where the joining manager's Raft, API and cluster
	// ports listen, as other managers should dial them.
	RaftAddr    string `json:"raft_addr,omitempty"`
	APIAddr     string `json:"api_addr,omitempty"`
	ClusterAddr string `json:"cluster_addr,omitempty"`
}

// JoinResponse carries the node's identity and, for managers, the key that
// seals secrets in Raft (sent only over TLS to a holder of the manager
// token).
type JoinResponse struct {
	NodeID     string   `json:"node_id"`
	CertPEM    []byte   `json:"cert_pem"`
	CAPEM      []byte   `json:"ca_pem"`
	SealingKey []byte   `json:"sealing_key,omitempty"`
	Members    []Member `json:"members,omitempty"`
}

// Member is one manager of the Raft group.
type Member struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	RaftAddr    string `json:"raft_addr"`
	APIAddr     string `json:"api_addr"`
	ClusterAddr string `json:"cluster_addr"`
	Leader      bool   `json:"leader"`
	Voter       bool   `json:"voter"`
	// Reachable is false when the leader has no recent contact with it.
	Reachable bool `json:"reachable"`
	// Health is HealthOK, HealthUnhealthy (Problem says why: its data
	// directory cannot take writes) or "" when it did not answer.
	Health  string `json:"health,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// Member health.
const (
	HealthOK        = "ok"
	HealthUnhealthy = "unhealthy"
)

// AddMemberRequest is sent by a manager that joined, once its Raft listens.
type AddMemberRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
}

// Tokens are the current join tokens.
type Tokens struct {
	Worker  string `json:"worker"`
	Manager string `json:"manager"`
}

// RotateRequest names the token to replace; the old one stops working.
type RotateRequest struct {
	Role string `json:"role"`
}

// maxIdlePerManager is how many connections to one manager a client keeps
// open for reuse: more than an agent ever has in flight.
const maxIdlePerManager = 16

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithTLS makes the client speak HTTPS with cfg (a cluster CA to verify
// the manager, and a client certificate where one is needed).
func WithTLS(cfg *tls.Config) ClientOption {
	return func(c *Client) {
		c.http.Transport = &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, IdleConnTimeout: 90 * time.Second,
			// A manager's listener offers no ALPN protocol, so requests go
			// over HTTP/1.1, one connection each at a time. An agent has
			// several in flight (blocking queries of its tasks and of the
			// network map, reports, heartbeats): with net/http's default of
			// 2 idle connections per host the others were closed after use,
			// and 100 sim nodes opened 820 new TLS connections in a 10 s
			// deploy. Should a manager offer h2, pings find a dead
			// connection (a frozen manager) so new requests get a new one.
			MaxIdleConnsPerHost: maxIdlePerManager,
			HTTP2:               &http.HTTP2Config{SendPingTimeout: 10 * time.Second, PingTimeout: 5 * time.Second}}
		for i, a := range c.addrs {
			if rest, ok := strings.CutPrefix(a, "http://"); ok {
				c.addrs[i] = "https://" + rest
			}
		}
	}
}

// WithToken sends "Authorization: Bearer token" on every request.
func WithToken(token string) ClientOption {
	return func(c *Client) { c.token = token }
}

// Join asks a manager's cluster port for a certificate.
func (c *Client) Join(ctx context.Context, req JoinRequest) (*JoinResponse, error) {
	var r JoinResponse
	_, err := c.do(ctx, http.MethodPost, PathJoin, nil, req, &r)
	return &r, err
}

// Members lists the managers.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var ms []Member
	_, err := c.do(ctx, http.MethodGet, PathMembers, nil, nil, &ms)
	return ms, err
}

// AddMember asks the leader to make a joined manager a voter.
func (c *Client) AddMember(ctx context.Context, req AddMemberRequest) error {
	_, err := c.do(ctx, http.MethodPost, PathMembers, nil, req, nil)
	return err
}

// RemoveMember removes a manager from the Raft group.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, fill(PathMember, id), nil, nil, nil)
	return err
}

// Tokens returns the join tokens.
func (c *Client) Tokens(ctx context.Context) (*Tokens, error) {
	var t Tokens
	_, err := c.do(ctx, http.MethodGet, PathTokens, nil, nil, &t)
	return &t, err
}

// RotateToken replaces the worker or manager token.
func (c *Client) RotateToken(ctx context.Context, role string) (*Tokens, error) {
	var t Tokens
	_, err := c.do(ctx, http.MethodPost, PathTokenRotate, nil, RotateRequest{Role: role}, &t)
	return &t, err
}

// SaveSnapshot streams a snapshot of the cluster state into w.
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer) error {
	rc, err := c.stream(ctx, PathSnapshot, nil)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// RestoreSnapshot replaces the cluster state with a saved snapshot.
func (c *Client) RestoreSnapshot(ctx context.Context, r io.Reader) error {
	return c.upload(ctx, PathSnapshot, r)
}
