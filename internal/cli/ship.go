package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/imagepush"
	"github.com/berth-dev/berth/internal/types"
)

// shipImages gets to the nodes every image they could not pull otherwise:
// each built image and each `image:` that only this machine's engine
// holds is pushed to the cluster registry and recorded there, and its
// service pinned to the pushed manifest (ClusterImage) and image ID, so
// every replica runs the same bytes and a rebuild rolls the service. It
// returns once min(2, managers) managers hold every image, so losing the
// manager that took the push loses none.
func (e *env) shipImages(ctx context.Context, c *api.Client, app *types.App, wait time.Duration) error {
	ship, err := e.imagesToShip(ctx, app)
	if err != nil || len(ship) == 0 {
		return err
	}
	if ship, err = e.skipSharedEngine(ctx, c, ship); err != nil || len(ship) == 0 {
		return err
	}
	pusher, err := e.images.OpenRegistry(ctx, c.Addr(), c.RoundTripper())
	if err != nil {
		return e.registryError(err, ship)
	}
	defer pusher.Close()
	records := newImageRecords(c)
	var pushed []pushedImage
	for _, s := range ship {
		rec, err := e.shipOne(ctx, pusher, records, app.Name, s)
		if err != nil {
			return fmt.Errorf("service %s: %w", s.svc.Name, err)
		}
		pushed = append(pushed, pushedImage{service: s.svc.Name, ref: s.svc.ClusterImage, replicas: len(rec.Replicas)})
	}
	want, err := replicasWanted(ctx, c)
	if err != nil {
		return err
	}
	return e.waitReplicas(ctx, records, pushed, want, wait)
}

// shipment is a service whose image is pushed, and why.
type shipment struct {
	svc       *types.Service
	localOnly bool // an `image:` only this machine's engine holds
}

// imagesToShip picks the docker services whose image the nodes get from
// the cluster registry: a build result, or an `image:` that the engine has
// and no registry does. pull_policy never says the nodes hold the image
// themselves. Where the engine cannot be asked about an `image:`, the
// nodes pull it as they always did.
func (e *env) imagesToShip(ctx context.Context, app *types.App) ([]shipment, error) {
	var out []shipment
	for _, svc := range app.Services {
		if svc.Driver == types.DriverExec || svc.Image == "" || svc.PullPolicy == types.PullNever {
			continue
		}
		if svc.Build != nil {
			if svc.ImageID != "" { // --no-build leaves a missing one to checkImages
				out = append(out, shipment{svc: svc})
			}
			continue
		}
		local, err := e.images.LocalOnly(ctx, svc.Image)
		var engErr *errEngine
		switch {
		case errors.As(err, &engErr):
			continue
		case err != nil:
			return nil, fmt.Errorf("service %s: %w", svc.Name, err)
		case local:
			out = append(out, shipment{svc: svc, localOnly: true})
		}
	}
	return out, nil
}

func (e *env) shipOne(ctx context.Context, pusher registryPusher, records imageRecords, app string, s shipment) (*imageRecord, error) {
	svc := s.svc
	repo, err := imageRepo(app, svc.Name)
	if err != nil {
		return nil, err
	}
	if s.localOnly {
		fmt.Fprintf(e.stderr, "Pushing %s's image %s to the cluster registry: it is on this machine's engine and in no registry the nodes could pull from\n",
			svc.Name, svc.Image)
	} else {
		fmt.Fprintf(e.stderr, "Pushing %s (image %s) to the cluster registry\n", svc.Name, svc.Image)
	}
	res, err := pusher.Push(ctx, svc.Image, repo, &indentWriter{w: e.stderr, indent: "  "})
	if err != nil {
		return nil, err
	}
	rec, err := records.PutImage(ctx, imagePut{App: app, Service: svc.Name, Repo: repo, Digest: res.Manifest})
	if err != nil {
		return nil, fmt.Errorf("record its image %s@%s: %w", repo, res.Manifest, err)
	}
	svc.ClusterImage = repo + "@" + res.Manifest
	svc.ImageID = res.Config
	fmt.Fprintf(e.stderr, "Pushed %s: %s sent, %d skipped (%s)\n", svc.Name,
		countOf(res.Pushed, "layer", "layers"), res.Skipped, shortRef(svc.ClusterImage))
	return rec, nil
}

// skipSharedEngine leaves out the pushes a dev cluster does not need: its
// one node is the manager's own agent on this machine, whose engine is
// this one and already holds every image, while the first push of an
// image costs its whole size in compression (about a minute for
// examples/hello here). Its tasks run the local image by ID, as before
// the registry. A service with pull_policy always is pushed still: its
// node pulls it every time. Once a cluster has more nodes, up pushes.
func (e *env) skipSharedEngine(ctx context.Context, c *api.Client, ship []shipment) ([]shipment, error) {
	if !e.managerOnThisMachine() {
		return ship, nil
	}
	st, err := c.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("ask the manager at %s for its status: %w", e.global.addr, err)
	}
	if !st.Dev {
		return ship, nil
	}
	nodes, err := c.ListNodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the nodes: %w", err)
	}
	if len(nodes) > 1 {
		return ship, nil
	}
	var keep []shipment
	var skipped []string
	for _, s := range ship {
		if s.svc.PullPolicy == types.PullAlways {
			keep = append(keep, s)
			continue
		}
		skipped = append(skipped, s.svc.Name)
	}
	if len(skipped) > 0 {
		fmt.Fprintf(e.stderr, "Not pushing the images of %s: the dev cluster's one node uses this machine's engine, which has them\n",
			strings.Join(skipped, ", "))
	}
	return keep, nil
}

// registryError says what to do when the cluster registry cannot take
// pushes at all.
func (e *env) registryError(err error, ship []shipment) error {
	names := make([]string, len(ship))
	for i, s := range ship {
		names[i] = s.svc.Name
	}
	if errors.Is(err, imagepush.ErrNoRegistry) {
		return fmt.Errorf("the manager at %s has no image registry (it runs an older berth), so the images of %s "+
			"cannot reach the nodes: upgrade the managers, or push the images to a registry the nodes can pull from "+
			"and name it in image:; nothing was submitted", e.global.addr, strings.Join(names, ", "))
	}
	return fmt.Errorf("push the images of %s: %w", strings.Join(names, ", "), err)
}

// replicasWanted is how many managers must hold an image before the app
// is submitted: two where there are two, so one manager's loss loses no
// image.
func replicasWanted(ctx context.Context, c *api.Client) (int, error) {
	ms, err := c.Members(ctx)
	if err != nil {
		return 0, fmt.Errorf("list the managers: %w", err)
	}
	return max(1, min(2, len(ms))), nil
}

// shortRef abbreviates the digest of "repo@sha256:HEX" for display.
func shortRef(ref string) string {
	repo, dgst, ok := strings.Cut(ref, "@sha256:")
	if !ok || len(dgst) < 12 {
		return ref
	}
	return repo + "@sha256:" + dgst[:12]
}

// indentWriter indents every line written through it.
type indentWriter struct {
	w      io.Writer
	indent string
	mid    bool // inside a line
}

func (iw *indentWriter) Write(p []byte) (int, error) {
	var b strings.Builder
	for _, c := range string(p) {
		if !iw.mid {
			b.WriteString(iw.indent)
		}
		b.WriteRune(c)
		iw.mid = c != '\n'
	}
	if _, err := io.WriteString(iw.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// pushedImage is an image up waits for.
type pushedImage struct {
	service, ref string
	replicas     int
}

// replicaPoll is how often up asks how far the images have replicated.
const replicaPoll = 500 * time.Millisecond

// waitReplicas returns once every image has want replicas, showing how
// far they are whenever that changes, or fails after wait.
func (e *env) waitReplicas(ctx context.Context, records imageRecords, images []pushedImage, want int, wait time.Duration) error {
	if replicated(images, want) {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(replicaPoll)
	defer tick.Stop()
	last := ""
	for {
		if now := replicaCounts(images, want); now != last {
			fmt.Fprintf(e.stderr, "Waiting for %d managers to hold each image: %s\n", want, now)
			last = now
		}
		if replicated(images, want) {
			return nil
		}
		select {
		case <-wctx.Done():
			if err := ctx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("the pushed images are not on %d managers after %s (%s): check the managers with "+
				"berth cluster members and their logs, then run berth up again; nothing was submitted", want, wait, last)
		case <-tick.C:
		}
		for i := range images {
			if images[i].replicas >= want {
				continue
			}
			// A failed look is retried on the next tick; the deadline
			// bounds the whole wait.
			if rec, err := records.Image(wctx, images[i].ref); err == nil {
				images[i].replicas = len(rec.Replicas)
			}
		}
	}
}

func replicated(images []pushedImage, want int) bool {
	for _, im := range images {
		if im.replicas < want {
			return false
		}
	}
	return true
}

// replicaCounts is "api 1/2, web 2/2".
func replicaCounts(images []pushedImage, want int) string {
	parts := make([]string, len(images))
	for i, im := range images {
		parts[i] = fmt.Sprintf("%s %d/%d", im.service, min(im.replicas, want), want)
	}
	return strings.Join(parts, ", ")
}
