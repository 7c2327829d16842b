package docker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// imageSource is where a service's image comes from on this node.
type imageSource struct {
	// name is the image as the user knows it, for messages.
	name string
	// local are the references the engine may hold it under, best first:
	// the image ID (a build, or an earlier pull), then the reference.
	local []string
	// pull is the reference to pull ("" when none can be pulled), and
	// why not when it is "".
	pull, noPull string
}

// sourceOf works out a service's image source. An image the CLI pushed to
// the cluster registry (ClusterImage) is pulled through the agent's
// endpoint on loopback; any other is pulled as it is named.
func (d *Driver) sourceOf(s *types.Service) imageSource {
	src := imageSource{name: s.Image}
	if s.ImageID != "" {
		src.local = append(src.local, s.ImageID)
	}
	switch {
	case s.ClusterImage != "" && d.registry == "":
		src.name = cmpOr(s.Image, s.ClusterImage)
		src.noPull = "it is in the cluster registry, and this node's agent has its registry endpoint off (--registry-port 0)"
	case s.ClusterImage != "":
		src.name = cmpOr(s.Image, s.ClusterImage)
		src.pull = d.registry + "/" + s.ClusterImage
		src.local = append(src.local, src.pull)
	case s.Image != "":
		src.pull = s.Image
		src.local = append(src.local, s.Image)
	default:
		src.noPull = "the service names no image"
	}
	return src
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ensureImage returns the image reference to create the container from,
// pulling the image as the service's pull policy says: "always" pulls
// even when the engine holds it, "never" never pulls, and anything else
// ("missing", "build", "") pulls when the engine lacks it.
func (d *Driver) ensureImage(ctx context.Context, cfg *driver.TaskConfig) (string, error) {
	s := cfg.Service
	src := d.sourceOf(s)
	if !pullsAlways(s) {
		ref, err := d.firstPresent(ctx, src.local)
		if err != nil || ref != "" {
			return ref, err
		}
		if s.PullPolicy == types.PullNever {
			// No node ID here: the user reads this beside the node's name
			// (berth ps, up's verdict), and an ID says nothing to them.
			return "", fmt.Errorf("image %s is not on the node, and its pull_policy is never: %w", src.name, driver.ErrImageNotFound)
		}
	}
	if src.pull == "" {
		return "", fmt.Errorf("image %s is not on the node and cannot be pulled: %s: %w", src.name, src.noPull, driver.ErrImageNotFound)
	}
	if err := d.pulls.do(ctx, src.pull, cfg.Progress, func(progress func(string)) error {
		return d.pull(ctx, src, progress)
	}); err != nil {
		return "", fmt.Errorf("image %s not found on the node and could not be pulled (%w): %w", src.name, pullReason(err), driver.ErrImageNotFound)
	}
	// The pull brought the image ID too, when the CLI pinned one: the
	// container is made from exactly what was pinned.
	if s.ImageID != "" && d.hasImage(ctx, s.ImageID) == nil {
		return s.ImageID, nil
	}
	return src.pull, nil
}

// pullsAlways reports whether a present image is pulled all the same. A
// build the CLI made on this engine (an ImageID and no ClusterImage: a dev
// cluster) is in no registry under its name: "always" cannot pull it, and
// the pinned image is what the user built, so it runs.
func pullsAlways(s *types.Service) bool {
	return s.PullPolicy == types.PullAlways && (s.ClusterImage != "" || s.ImageID == "")
}

// firstPresent returns the first of refs the engine holds ("" if none).
func (d *Driver) firstPresent(ctx context.Context, refs []string) (string, error) {
	for _, ref := range refs {
		err := d.hasImage(ctx, ref)
		if err == nil {
			return ref, nil
		}
		if !cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("inspect image %s: %w", ref, err)
		}
	}
	return "", nil
}

// pull has the engine pull src, telling progress how far it got.
func (d *Driver) pull(ctx context.Context, src imageSource, progress func(string)) error {
	d.log.Info("pulling image", "image", src.name, "ref", src.pull)
	progress(fmt.Sprintf("pulling image %s", src.name))
	resp, err := d.cli.ImagePull(ctx, src.pull, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	tr := newPullTracker(src.name)
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return err
		}
		if msg.Error != nil {
			return errors.New(msg.Error.Message)
		}
		if tr.add(msg) {
			progress(tr.String())
		}
	}
	d.images.remember(src.pull)
	return nil
}

// hasImage checks the engine has an image, remembering a yes for a short
// while: 100 replicas of one image need one lookup, not 100.
func (d *Driver) hasImage(ctx context.Context, ref string) error {
	if d.images.fresh(ref) {
		return nil
	}
	if _, err := d.cli.ImageInspect(ctx, ref); err != nil {
		return err
	}
	d.images.remember(ref)
	return nil
}

// imageCache remembers which images the engine had, for imageCacheTTL. A
// stale yes costs nothing worse than a create that fails with the image
// missing, which the task reports.
type imageCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

const imageCacheTTL = 10 * time.Second

func (c *imageCache) fresh(ref string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.seen[ref]
	return ok && time.Since(at) < imageCacheTTL
}

func (c *imageCache) remember(ref string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	c.seen[ref] = time.Now()
}

// pullReason is the engine's answer to a failed pull without the client's
// wrapping, so the task's error reads as the registry put it.
func pullReason(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}
