package imagepush

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/client"
)

// Engine is what Push needs of a Docker engine; *client.Client is one.
type Engine interface {
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageTag(ctx context.Context, o client.ImageTagOptions) (client.ImageTagResult, error)
	ImagePush(ctx context.Context, ref string, o client.ImagePushOptions) (client.ImagePushResponse, error)
	ImageRemove(ctx context.Context, ref string, o client.ImageRemoveOptions) (client.ImageRemoveResult, error)
}

// PushTag is the tag the image is pushed under. Nothing pulls by it (the
// cluster pins the manifest digest); the registry needs some tag or digest
// to take a manifest, and the engine pushes by tag.
const PushTag = "berth-push"

// Result is what a push did.
type Result struct {
	Manifest string // the manifest's digest in the repository, "sha256:..."
	Config   string // the image ID (the digest of its config)
	Pushed   int    // layers sent
	Skipped  int    // layers the registry had
}

// ErrEngine marks a Docker engine that cannot be reached (errors.Is).
var ErrEngine = errors.New("the Docker engine cannot be reached")

// cleanupTimeout bounds removing the push's tag, which runs even when the
// push was interrupted.
const cleanupTimeout = 30 * time.Second

// noAuth is an empty X-Registry-Auth: the proxy adds the credential, and
// some engines refuse a push with no header at all.
var noAuth = base64.URLEncoding.EncodeToString([]byte("{}"))

// Push pushes the local image localRef to repo ("app/service") in the
// cluster registry, writing layer progress to progress. A refusal of the
// registry comes back as a *Refusal, an engine that cannot be reached as
// ErrEngine.
func (p *Proxy) Push(ctx context.Context, eng Engine, localRef, repo string, progress io.Writer) (Result, error) {
	img, err := eng.ImageInspect(ctx, localRef)
	if err != nil {
		return Result{}, engineError(fmt.Sprintf("inspect image %s", localRef), err)
	}
	tag := p.Host() + "/" + repo + ":" + PushTag
	// Tag the ID, not localRef: a tag moved meanwhile (a parallel build)
	// must not change what is pushed under this image's ID.
	if _, err := eng.ImageTag(ctx, client.ImageTagOptions{Source: img.ID, Target: tag}); err != nil {
		return Result{}, engineError(fmt.Sprintf("tag image %s", localRef), err)
	}
	res := Result{Config: img.ID}
	defer untag(ctx, eng, tag, len(img.RepoTags) > 0)
	ctx, stop := p.stopOnRefusal(ctx)
	defer stop()
	resp, err := eng.ImagePush(ctx, tag, client.ImagePushOptions{RegistryAuth: noAuth})
	if err != nil {
		return Result{}, p.explain(engineError("push "+localRef, err))
	}
	defer resp.Close()
	layers := newLayerLog(progress)
	if err := follow(ctx, resp, layers, &res); err != nil {
		return Result{}, p.explain(err)
	}
	res.Pushed, res.Skipped = layers.counts()
	return res, nil
}

// stopOnRefusal returns a context that ends when the registry refuses
// something of the push: the engine would retry it for a minute, to the
// same answer.
func (p *Proxy) stopOnRefusal(ctx context.Context) (context.Context, context.CancelFunc) {
	refused := p.begin()
	ctx, stop := context.WithCancel(ctx)
	go func() {
		select {
		case <-refused:
			stop()
		case <-ctx.Done():
		}
	}()
	return ctx, stop
}

// untag removes the push's tag (the engine drops the digest reference
// the push recorded with it), so the user's image list is as before. When
// the image had no tag of its own, removing ours would delete it: then
// ours stays.
func untag(ctx context.Context, eng Engine, tag string, hadTag bool) {
	if !hadTag {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	// Best effort: a leftover tag is untidy, not wrong, and the push's
	// own result matters more than its cleanup.
	_, _ = eng.ImageRemove(ctx, tag, client.ImageRemoveOptions{})
}

// explain prefers the registry's refusal, which says why, over the
// engine's account of it.
func (p *Proxy) explain(err error) error {
	if r := p.lastRefusal(); r != nil && !errors.Is(err, ErrEngine) {
		return r
	}
	return err
}

func engineError(what string, err error) error {
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("%s: %w (%w)", what, ErrEngine, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
