// Package api is berth's HTTP API: the wire types and the Go client that the
// CLI, the agents and the tests all use. Nothing else talks to a manager.
//
// Every endpoint lives under /v1 and speaks JSON. Errors come back as
// {"error": "...", "field": "..."} with a 4xx or 5xx status; the client turns
// them into *Error, so callers test them with errors.Is(err, ErrNotFound) or
// errors.As.
//
// List endpoints are blocking queries: pass QueryOptions.Index (the
// X-Berth-Index of an earlier answer) and Wait, and the manager answers only
// once something newer than Index has been committed, or Wait has passed.
//
//	c := api.NewClient("http://127.0.0.1:7700")
//	tasks, meta, err := c.ListTasks(ctx, api.TaskQuery{App: "hello"})
//	// ... later, wait for a change:
//	tasks, meta, err = c.ListTasks(ctx, api.TaskQuery{App: "hello", QueryOptions: api.QueryOptions{Index: meta.Index, Wait: 30 * time.Second}})
//
// Every request has a deadline (WithTimeouts; a blocking query gets its
// wait on top). A manager that does not answer in time, or answers 5xx, is
// left for the next one the client knows (SetAddrs), and requests still
// waiting on it follow. Idempotent requests (Idempotent) are retried through
// an election (502, 503) for a while; a write that may have been done but
// cannot be sent again fails with an error matching ErrOutcomeUnknown.
// Streams (task logs) carry heartbeats (HeaderHeartbeat), so a silent
// manager is told from a quiet stream.
package api
