package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// PathEvents streams recent changes of deployments, tasks and nodes: GET
// ?index=SINCE&wait=D, answered with EventsResponse once there is an event
// after SINCE (index 0: at once, with every event the manager keeps).
const PathEvents = "/v1/events"

// Event is one change, stamped with the Raft index of the entry that made
// it: the same on every manager, so a client resumes on another.
type Event struct {
	Index   uint64 `json:"index"`
	Kind    string `json:"kind"`   // "deployment", "task" or "node"
	Action  string `json:"action"` // "created", "updated" or "deleted"
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	App     string `json:"app,omitempty"`
	Service string `json:"service,omitempty"`
	State   string `json:"state,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// EventGap is a range of indexes whose events the manager does not have
// (it started, or restored a snapshot, after them; or its ring dropped
// them).
type EventGap struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// EventsResponse is one answer: the events after the index asked for,
// the gap before them if any, and the index to ask after next.
type EventsResponse struct {
	Events []Event   `json:"events"`
	Gap    *EventGap `json:"gap,omitempty"`
	Index  uint64    `json:"index"`
}

// Events returns the events after since, waiting up to wait for one.
func (c *Client) Events(ctx context.Context, since uint64, wait time.Duration) (*EventsResponse, error) {
	v := url.Values{}
	v.Set("index", strconv.FormatUint(since, 10))
	v.Set("wait", wait.String())
	var r EventsResponse
	_, err := c.do(ctx, http.MethodGet, PathEvents, v, nil, &r)
	return &r, err
}
