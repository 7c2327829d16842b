package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/types"
)

// berth run: a one-off task of a service (types.OneOff), as docker compose
// run starts one. POST PathAppRuns submits the app as berth up would, with
// the one-off added and only the service's dependencies applied; the CLI
// then attaches to the one-off's task (PathTaskAttach, framed as exec is)
// and, for --rm, deletes it (PathAppRun).
const (
	PathAppRuns         = "/v1/apps/{name}/runs"           // POST RunRequest -> RunResponse
	PathAppRun          = "/v1/apps/{name}/runs/{service}" // DELETE -> RemoveRunResponse
	PathTaskAttach      = "/v1/tasks/{id}/attach"          // POST ?size= (framed both ways, as exec)
	PathAgentTaskAttach = "/v1/agent/tasks/{id}/attach"    // POST, the same, from the manager
)

// RunRequest is berth run's SERVICE [CMD...] and flags.
type RunRequest struct {
	// App is the app as the Compose file has it, as berth up submits it:
	// the one-off is made from its Service, and the dependencies that
	// start first come from it.
	App     *types.App `json:"app"`
	Service string     `json:"service"`
	// Name is --name: the one-off's name (default SERVICE-run-HEX).
	Name string `json:"name,omitempty"`
	// Command replaces the service's command when given; Entrypoint
	// (--entrypoint, split into words) its entrypoint, and then the
	// command too, as Compose does.
	Command    []string `json:"command,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Env are -e K=V, over the service's environment.
	Env     []string `json:"env,omitempty"`
	User    string   `json:"user,omitempty"`
	WorkDir string   `json:"workdir,omitempty"`
	// Publish are -p specs ([[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL]); the
	// service's own ports only with ServicePorts.
	Publish      []string `json:"publish,omitempty"`
	ServicePorts bool     `json:"service_ports,omitempty"`
	// NoDeps starts the one-off alone, not after its dependencies.
	NoDeps bool `json:"no_deps,omitempty"`
	// TTY gives the task a terminal; Interactive keeps its stdin open for
	// the attach to feed.
	TTY         bool `json:"tty,omitempty"`
	Interactive bool `json:"interactive,omitempty"`
}

// RunResponse names the one-off the run made and the app as submitted.
type RunResponse struct {
	Service string     `json:"service"`
	App     *types.App `json:"app"`
	Index   uint64     `json:"index"`
}

// RemoveRunResponse says what a one-off's removal did: Removed, with its
// task records, or Stopping first (the manager removes it once stopped).
type RemoveRunResponse struct {
	Removed  bool `json:"removed"`
	Stopping bool `json:"stopping"`
}

// Run starts a one-off as req says.
func (c *Client) Run(ctx context.Context, app string, req RunRequest) (*RunResponse, error) {
	var r RunResponse
	_, err := c.do(ctx, http.MethodPost, fill(PathAppRuns, app), nil, req, &r)
	return &r, err
}

// RemoveRun removes a one-off of app, stopping it first if it runs.
func (c *Client) RemoveRun(ctx context.Context, app, service string) (*RemoveRunResponse, error) {
	var r RemoveRunResponse
	_, err := c.do(ctx, http.MethodDelete, fill(PathAppRun, app, service), nil, nil, &r)
	return &r, err
}

// Attach streams a task's own process (a one-off's): its output from the
// start, stdin to it, until it exits; it returns the exit code. rows and
// cols are the terminal's size (0: none).
func (c *Client) Attach(ctx context.Context, taskID string, rows, cols uint16, sio ExecIO) (int, error) {
	q := url.Values{}
	if rows > 0 && cols > 0 {
		q.Set("size", fmt.Sprintf("%dx%d", rows, cols))
	}
	return c.duplex(ctx, fill(PathTaskAttach, taskID), q, sio)
}

// ParsePublish reads one -p spec, as docker run takes it:
// [[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL], with PUBLISHED empty or left
// out for none. Ranges are not taken.
func ParsePublish(spec string) (types.Port, error) {
	p := types.Port{Protocol: "tcp"}
	rest := spec
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		p.Protocol = strings.ToLower(rest[i+1:])
		rest = rest[:i]
	}
	if p.Protocol != "tcp" && p.Protocol != "udp" {
		return p, fmt.Errorf("%q: protocol %q is not tcp or udp", spec, p.Protocol)
	}
	parts := strings.Split(rest, ":")
	if len(parts) > 3 {
		return p, fmt.Errorf("%q is not [[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL]", spec)
	}
	target, err := portNumber(parts[len(parts)-1])
	if err != nil {
		return p, fmt.Errorf("%q: target port: %w", spec, err)
	}
	p.Target = target
	if len(parts) >= 2 && parts[len(parts)-2] != "" {
		if p.Published, err = portNumber(parts[len(parts)-2]); err != nil {
			return p, fmt.Errorf("%q: published port: %w", spec, err)
		}
	}
	if len(parts) == 3 {
		p.HostIP = strings.Trim(parts[0], "[]")
	}
	return p, nil
}

func portNumber(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number from 1 to 65535", s)
	}
	return uint16(n), nil
}
