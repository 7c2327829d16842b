package imagebuild

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// ErrImageNotFound is returned (wrapped) by ImageID for a tag the engine does
// not hold.
var ErrImageNotFound = errors.New("image not found")

// NewClient connects to the engine at host, or to the one the environment
// names (DOCKER_HOST, else the local socket) when host is empty. The client
// negotiates the API version on first use (the default in moby client v0.6),
// so engines as old as 20.10 (API 1.41) work.
func NewClient(host string) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("configure docker client: %w", err)
	}
	return cli, nil
}

// ImageID returns the ID ("sha256:...") of the local image ref names.
func ImageID(ctx context.Context, cli *client.Client, ref string) (string, error) {
	res, err := cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("image %s is not on the local engine: %w", ref, ErrImageNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return res.ID, nil
}
