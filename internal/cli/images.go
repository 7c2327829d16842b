package cli

import (
	"context"
	"errors"
	"io"

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
