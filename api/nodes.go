package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/internal/types"
)

// Node operation routes. {id} also takes a node's name or a unique ID prefix.
const (
	PathNodeAvailability = "/v1/nodes/{id}/availability" // POST AvailabilityRequest
	PathNodeLabels       = "/v1/nodes/{id}/labels"       // POST LabelsRequest
	// DELETE PathNode?force=true removes a node.
)

// AvailabilityRequest drains or activates a node.
type AvailabilityRequest struct {
	Availability types.Availability `json:"availability"`
}

// LabelsRequest adds (or overwrites) and removes node labels.
type LabelsRequest struct {
	Add    map[string]string `json:"add,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// GetNode returns one node by ID, name or unique ID prefix.
func (c *Client) GetNode(ctx context.Context, ref string) (*types.Node, error) {
	var n types.Node
	_, err := c.do(ctx, http.MethodGet, fill(PathNode, ref), nil, nil, &n)
	return &n, err
}

// SetNodeAvailability drains (tasks move off, nothing new is placed) or
// activates a node.
func (c *Client) SetNodeAvailability(ctx context.Context, ref string, a types.Availability) (*types.Node, error) {
	var n types.Node
	_, err := c.do(ctx, http.MethodPost, fill(PathNodeAvailability, ref), nil, AvailabilityRequest{Availability: a}, &n)
	return &n, err
}

// UpdateNodeLabels adds and removes labels of a node.
func (c *Client) UpdateNodeLabels(ctx context.Context, ref string, req LabelsRequest) (*types.Node, error) {
	var n types.Node
	_, err := c.do(ctx, http.MethodPost, fill(PathNodeLabels, ref), nil, req, &n)
	return &n, err
}

// RemoveNode removes a node from the cluster. Without force, only a node
// that is down can be removed.
func (c *Client) RemoveNode(ctx context.Context, ref string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "true")
	}
	_, err := c.do(ctx, http.MethodDelete, fill(PathNode, ref), q, nil, nil)
	return err
}
