package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berth-dev/berth/internal/types"
)

// Volume pin routes (see types.VolumePin).
const (
	PathVolumePins  = "/v1/apps/{name}/pins"                    // GET []types.VolumePin
	PathServicePins = "/v1/apps/{name}/services/{service}/pins" // DELETE ?slot=N (all slots without): the removed pins
)

// VolumePins lists where the app's replicas keep their named volumes.
func (c *Client) VolumePins(ctx context.Context, app string) ([]*types.VolumePin, error) {
	var ps []*types.VolumePin
	_, err := c.do(ctx, http.MethodGet, fill(PathVolumePins, app), nil, nil, &ps)
	return ps, err
}

// Unpin forgets where a service's replicas keep their volumes (one slot, or
// every slot with slot 0), so each may next be placed on any node, with
// empty volumes there. It returns the pins removed; errors.Is(err,
// ErrNotFound) when nothing was pinned.
func (c *Client) Unpin(ctx context.Context, app, service string, slot int) ([]*types.VolumePin, error) {
	q := url.Values{}
	if slot > 0 {
		q.Set("slot", strconv.Itoa(slot))
	}
	var ps []*types.VolumePin
	_, err := c.do(ctx, http.MethodDelete, fill(PathServicePins, app, service), q, nil, &ps)
	return ps, err
}
