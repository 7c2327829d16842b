package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/imagebuild"
	"github.com/berth-dev/berth/internal/types"
)

// buildImages gives every service with a build section an image on the
// local engine, as docker compose does: build when the image is missing,
// always with --build or pull_policy: build, never with --no-build. Each
// service's ImageID is set to the local image, so a rebuilt image under
// the same tag rolls the service.
func (e *env) buildImages(ctx context.Context, app *types.App, o upOptions) error {
	for _, svc := range app.Services {
		if svc.Build == nil {
			continue
		}
		nameBuiltImage(app, svc)
		id, err := e.serviceImage(ctx, svc, o)
		if err != nil {
			return err
		}
		svc.ImageID = id
	}
	return e.checkImages(ctx, app)
}

// checkImages refuses, before anything is submitted, a docker service whose
// image the CLI can see is missing: not on this machine's engine, and its
// registry says it has no such image. Where the CLI cannot tell (no local
// engine, a registry it cannot reach) the nodes pull as before. A manager
// on another machine may run nodes that hold images of their own, so there
// it is a warning, not a refusal.
func (e *env) checkImages(ctx context.Context, app *types.App) error {
	var missing []string
	for _, svc := range app.Services {
		if svc.Driver == types.DriverExec || svc.ImageID != "" || svc.Image == "" {
			continue
		}
		id, err := e.images.ImageID(ctx, svc.Image)
		if err != nil {
			return nil // no engine here: nothing the CLI can see
		}
		if id != "" {
			continue
		}
		has, err := e.images.RegistryHas(ctx, svc.Image)
		if err == nil && !has {
			missing = append(missing, fmt.Sprintf("service %s: image %s", svc.Name, svc.Image))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	where := "is neither on this machine's Docker engine nor in its registry"
	if len(missing) > 1 {
		where = "are neither on this machine's Docker engine nor in their registries"
	}
	if !e.managerOnThisMachine() {
		fmt.Fprintf(e.stderr, "warning: %s %s; the nodes must hold it themselves\n", strings.Join(missing, ", "), where)
		return nil
	}
	return fmt.Errorf("%s %s: fix the name, or build or pull the image first; nothing was submitted",
		strings.Join(missing, ", "), where)
}

// managerOnThisMachine: the manager is on loopback, so its nodes' engine is
// the one this CLI sees (the local cluster, a dev server).
func (e *env) managerOnThisMachine() bool {
	hostPort, err := listenAddr(e.global.addr)
	return err == nil && api.IsLoopback(hostPort)
}

func (e *env) serviceImage(ctx context.Context, svc *types.Service, o upOptions) (string, error) {
	if !o.build && (svc.PullPolicy != types.PullBuild || o.noBuild) {
		id, err := e.images.ImageID(ctx, svc.Image)
		if err != nil {
			return "", fmt.Errorf("service %s: %w", svc.Name, err)
		}
		if id != "" || o.noBuild {
			return id, nil
		}
	}
	return e.buildService(ctx, svc, imageBuildOptions(svc), e.stderr)
}

// imageBuildOptions is the build of svc's build section, tagged as its
// image.
func imageBuildOptions(svc *types.Service) imagebuild.Options {
	b := svc.Build
	return imagebuild.Options{Context: b.Context, Dockerfile: b.Dockerfile, Args: b.Args, Target: b.Target, Tag: svc.Image, Labels: b.Labels}
}

// buildService builds svc's image with o, its progress to progress.
func (e *env) buildService(ctx context.Context, svc *types.Service, o imagebuild.Options, progress io.Writer) (string, error) {
	fmt.Fprintf(progress, "Building %s (image %s)\n", svc.Name, svc.Image)
	id, err := e.images.Build(ctx, o, progress)
	if err != nil {
		return "", fmt.Errorf("service %s: %w", svc.Name, err)
	}
	return id, nil
}

// nameBuiltImage gives a service with a build section and no image the tag
// docker compose gives it.
func nameBuiltImage(app *types.App, svc *types.Service) {
	if svc.Image == "" {
		svc.Image = defaultImageName(app.Name, svc.Name)
	}
}

// defaultImageName is the tag docker compose gives a built image that names
// none: "<project>-<service>".
func defaultImageName(project, service string) string {
	return project + "-" + service
}
