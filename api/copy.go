package api

import (
	"context"
	"io"
	"net/http"
	"net/url"
)

// Copy paths (berth cp): a tar stream of a path in a task, as the engine's
// archive API gives it, through the manager to the task's agent.
const (
	PathTaskArchive      = "/v1/tasks/{id}/archive"       // GET ?path= (tar answer), PUT ?path= (tar body)
	PathAgentTaskArchive = "/v1/agent/tasks/{id}/archive" // the same, from the manager
)

// MaxCopyBytes bounds the tar a copy sends or receives, either way: a
// copy is for files, not images or volumes.
const MaxCopyBytes = 1 << 30

// CopyFrom returns a tar of path in the task; the caller closes it. The
// answer may be cut (the node failed midway): the tar then ends early and
// reading it fails.
func (c *Client) CopyFrom(ctx context.Context, taskID, path string) (io.ReadCloser, error) {
	return c.stream(ctx, fill(PathTaskArchive, taskID), url.Values{"path": {path}})
}

// CopyTo extracts the tar r to path in the task (into it when it is a
// directory, else as it). It is sent once, to the manager in use.
func (c *Client) CopyTo(ctx context.Context, taskID, path string, r io.Reader) error {
	// Expect: a refusal (no such task, the exec driver's) comes before the
	// body is sent, not after a gigabyte of it.
	header := http.Header{"Content-Type": {"application/x-tar"}, "Expect": {ExpectContinue}}
	return c.uploadAs(ctx, http.MethodPut, fill(PathTaskArchive, taskID)+"?"+url.Values{"path": {path}}.Encode(), r, header,
		func(io.Reader) error { return nil })
}
