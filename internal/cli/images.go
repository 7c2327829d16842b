package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/imagebuild"
	"github.com/moby/moby/client"
)

// imageBuilder builds service images on the local engine. The build runs
// where the CLI runs, as with docker compose; the manager never sees a build
// context.
type imageBuilder interface {
	// ImageID returns the ID of the local image ref, or "" with a nil
	// error when the engine does not hold it.
	ImageID(ctx context.Context, ref string) (string, error)
	// RegistryHas reports whether ref's registry has the image; an error
	// means the registry could not be asked, so nobody knows.
	RegistryHas(ctx context.Context, ref string) (bool, error)
	// Build builds an image and returns its ID.
	Build(ctx context.Context, o imagebuild.Options, progress io.Writer) (string, error)
	Close() error
}

// dockerImages is the imageBuilder of the local Docker engine. It connects
// on first use, so commands that build nothing never need an engine.
type dockerImages struct {
	cli *client.Client
}

func (d *dockerImages) engine() (*client.Client, error) {
	if d.cli != nil {
		return d.cli, nil
	}
	cli, err := imagebuild.NewClient("")
	if err != nil {
		return nil, err
	}
	d.cli = cli
	return cli, nil
}

func (d *dockerImages) ImageID(ctx context.Context, ref string) (string, error) {
	cli, err := d.engine()
	if err != nil {
		return "", err
	}
	id, err := imagebuild.ImageID(ctx, cli, ref)
	if errors.Is(err, imagebuild.ErrImageNotFound) {
		return "", nil
	}
	return id, err
}

// RegistryHas asks the engine to ask the registry. A registry that answers
// "not found", or refuses access as Docker Hub does for a repository that
// does not exist, means no.
func (d *dockerImages) RegistryHas(ctx context.Context, ref string) (bool, error) {
	cli, err := d.engine()
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, registryAskTimeout)
	defer cancel()
	_, err = cli.DistributionInspect(ctx, ref, client.DistributionInspectOptions{})
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err), cerrdefs.IsUnauthorized(err), cerrdefs.IsPermissionDenied(err):
		return false, nil
	}
	return false, fmt.Errorf("ask the registry of %s: %w", ref, err)
}

// registryAskTimeout bounds one registry question: up must not hang on a
// registry it cannot reach, it only loses the early check.
const registryAskTimeout = 10 * time.Second

func (d *dockerImages) Build(ctx context.Context, o imagebuild.Options, progress io.Writer) (string, error) {
	cli, err := d.engine()
	if err != nil {
		return "", err
	}
	return imagebuild.Build(ctx, cli, o, progress)
}

func (d *dockerImages) Close() error {
	if d.cli == nil {
		return nil
	}
	return d.cli.Close()
}
