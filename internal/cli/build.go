package cli

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/imagebuild"
	"github.com/berth-dev/berth/internal/types"
)

// buildImages gives every service with a build section an image on the
// local engine, as docker compose does: build when the image is missing,
// always with --build, never with --no-build. Each service's ImageID is set
// to the local image, so a rebuilt image under the same tag rolls the
// service.
func (e *env) buildImages(ctx context.Context, app *types.App, o upOptions) error {
	defer e.images.Close()
	for _, svc := range app.Services {
		if svc.Build == nil {
			continue
		}
		if svc.Image == "" {
			svc.Image = defaultImageName(app.Name, svc.Name)
		}
		id, err := e.serviceImage(ctx, svc, o)
		if err != nil {
			return err
		}
		svc.ImageID = id
	}
	return nil
}

func (e *env) serviceImage(ctx context.Context, svc *types.Service, o upOptions) (string, error) {
	if !o.build {
		id, err := e.images.ImageID(ctx, svc.Image)
		if err != nil {
			return "", fmt.Errorf("service %s: %w", svc.Name, err)
		}
		if id != "" || o.noBuild {
			return id, nil
		}
	}
	fmt.Fprintf(e.stderr, "Building %s (image %s)\n", svc.Name, svc.Image)
	b := svc.Build
	id, err := e.images.Build(ctx, imagebuild.Options{
		Context:    b.Context,
		Dockerfile: b.Dockerfile,
		Args:       b.Args,
		Target:     b.Target,
		Tag:        svc.Image,
		Labels:     b.Labels,
	}, e.stderr)
	if err != nil {
		return "", fmt.Errorf("service %s: %w", svc.Name, err)
	}
	return id, nil
}

// defaultImageName is the tag docker compose gives a built image that names
// none: "<project>-<service>".
func defaultImageName(project, service string) string {
	return project + "-" + service
}
