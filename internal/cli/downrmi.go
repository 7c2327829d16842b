package cli

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/types"
)

// removeImages is down --rmi: as docker compose, the app's images leave
// this machine's engine, all of them or (local) only those built without an
// image: name. The cluster registry's copies need no flag: its GC drops
// the images of an app that is gone. An image the engine lacks is skipped;
// one it cannot remove (another container uses it) is a warning.
func (e *env) removeImages(ctx context.Context, app *types.App, rmi string) error {
	defer e.images.Close()
	seen := map[string]bool{}
	for _, svc := range app.Services {
		ref := svc.Image
		builtUnnamed := svc.Build != nil && (ref == "" || ref == defaultImageName(app.Name, svc.Name))
		if ref == "" {
			ref = defaultImageName(app.Name, svc.Name)
		}
		if svc.Driver == types.DriverExec || seen[ref] || (rmi == "local" && !builtUnnamed) {
			continue
		}
		seen[ref] = true
		removed, err := e.images.Remove(ctx, ref)
		switch {
		case err != nil:
			fmt.Fprintf(e.stderr, "warning: image %s was not removed: %s\n", ref, describeError(err, e))
		case removed:
			fmt.Fprintf(e.stdout, "Removed image %s\n", ref)
		}
	}
	return nil
}

// Remove removes ref from the engine; false when the engine has no such
// image.
func (d *dockerImages) Remove(ctx context.Context, ref string) (bool, error) {
	cli, err := d.engine()
	if err != nil {
		return false, err
	}
	_, err = cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{})
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, engineError(cli, err)
}
