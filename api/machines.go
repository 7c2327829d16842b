package api

import (
	"context"
	"net/http"
	"time"
)

// Machine record routes: the hosts berth made (`berth machine`, `berth
// cluster create`), as the cluster records them.
const (
	PathMachines = "/v1/machines"        // GET []Machine
	PathMachine  = "/v1/machines/{name}" // GET Machine; PUT Machine (create or replace): the stored Machine; DELETE
)

// Machine is a host's record on the wire. It never carries what the
// host's driver keeps on the machine that made it, nor a token.
type Machine struct {
	Name   string            `json:"name"`
	Driver string            `json:"driver"`
	Role   string            `json:"role"` // agent or manager
	Labels map[string]string `json:"labels,omitempty"`
	// Address is the host's IP; DockerHost its engine (agents), as
	// DOCKER_HOST takes it.
	Address    string    `json:"address"`
	DockerHost string    `json:"docker_host,omitempty"`
	Created    time.Time `json:"created"`
}

// Machines lists the cluster's machine records, sorted by name.
func (c *Client) Machines(ctx context.Context) ([]Machine, error) {
	var ms []Machine
	_, err := c.do(ctx, http.MethodGet, PathMachines, nil, nil, &ms)
	return ms, err
}

// Machine returns one record; errors.Is(err, ErrNotFound) when there is
// none.
func (c *Client) Machine(ctx context.Context, name string) (*Machine, error) {
	var m Machine
	if _, err := c.do(ctx, http.MethodGet, fill(PathMachine, name), nil, nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// PutMachine records m (by m.Name), replacing a record of that name.
func (c *Client) PutMachine(ctx context.Context, m Machine) (*Machine, error) {
	var out Machine
	if _, err := c.do(ctx, http.MethodPut, fill(PathMachine, m.Name), nil, m, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteMachine forgets a record; errors.Is(err, ErrNotFound) when there
// is none.
func (c *Client) DeleteMachine(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, fill(PathMachine, name), nil, nil, nil)
	return err
}
