package imagepush

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/moby/moby/client"
)

// SaveEngine is what RawPush needs of a Docker engine; *client.Client is
// one.
type SaveEngine interface {
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageSave(ctx context.Context, imageIDs []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error)
}

// ErrLayout marks an engine whose `docker save` is not the layout RawPush
// reads (errors.Is); the engine's own push still works there.
var ErrLayout = errors.New("the engine's image save is not in the layout berth reads")

// OCI media types of what RawPush writes: the layers go uncompressed, as
// the engine stores them, so nothing spends time on gzip and the layer
// digests are the image's diffIDs, which the registry can be asked about
// before anything is saved.
const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociConfig   = "application/vnd.oci.image.config.v1+json"
	ociLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// Bounds on what RawPush reads of the engine's save besides layers.
const (
	maxLayers    = 1000
	maxSmallFile = 8 << 20 // a config, a layer's json, manifest.json
)

// RawPush pushes the local image localRef to repo straight to the cluster
// registry through the proxy's transport, from the engine's `docker save`
// with uncompressed layers, skipping the layers the registry has without
// saving them. An engine whose save it cannot read gives ErrLayout (before
// anything is pushed where it can tell), a refusal of the registry a
// *Refusal.
func (p *Proxy) RawPush(ctx context.Context, eng SaveEngine, localRef, repo string, progress io.Writer) (Result, error) {
	img, err := eng.ImageInspect(ctx, localRef)
	if err != nil {
		return Result{}, engineError(fmt.Sprintf("inspect image %s", localRef), err)
	}
	diffIDs := img.RootFS.Layers
	if len(diffIDs) == 0 || len(diffIDs) > maxLayers {
		return Result{}, fmt.Errorf("image %s has %d layers: %w", localRef, len(diffIDs), ErrLayout)
	}
	rp := &rawPush{reg: registryClient{target: p.target, rt: p.rt, repo: repo}, diffIDs: diffIDs,
		config: img.ID, out: progress, size: map[string]int64{}, from: p.mountable(repo), mounted: map[string]bool{}}
	if err := rp.ask(ctx); err != nil {
		return Result{}, err
	}
	if !rp.complete() {
		save, err := eng.ImageSave(ctx, []string{img.ID})
		if err != nil {
			return Result{}, engineError(fmt.Sprintf("save image %s", localRef), err)
		}
		defer save.Close()
		if err := rp.stream(ctx, save); err != nil {
			return Result{}, err
		}
	}
	res, err := rp.finish(ctx)
	if err == nil {
		p.pushedTo(repo)
	}
	return res, err
}

// rawPush is one RawPush's state: which blobs the registry has and the
// size of each, which the manifest names.
type rawPush struct {
	reg     registryClient
	diffIDs []string
	config  string
	out     io.Writer

	size    map[string]int64 // digest -> size, of every blob the registry holds
	pushed  int
	skipped int
	// from are the repositories a missing blob may be mounted from;
	// mounted the layers that were.
	from    []string
	mounted map[string]bool
}

// ask asks the registry which layers and whether the config it has.
func (rp *rawPush) ask(ctx context.Context) error {
	for _, d := range append([]string{rp.config}, rp.diffIDs...) {
		if _, ok := rp.size[d]; ok {
			continue // a layer twice in one image
		}
		size, ok, err := rp.reg.has(ctx, d)
		if err != nil {
			return err
		}
		if !ok {
			if size, ok, err = rp.mount(ctx, d); err != nil {
				return err
			}
		}
		if ok {
			rp.size[d] = size
		}
	}
	for _, d := range uniq(rp.diffIDs) {
		if _, ok := rp.size[d]; ok {
			if !rp.mounted[d] {
				rp.line(d, layerSkipped, "")
			}
			rp.skipped++
		}
	}
	return nil
}

// mount links blob d into the push's repository from one of the
// repositories pushed before, where the registry holds it (the registry's
// blobs are per repository: a HEAD elsewhere says 404), so a layer shared
// by an app's images (their base) goes over the wire once.
func (rp *rawPush) mount(ctx context.Context, d string) (int64, bool, error) {
	for _, from := range rp.from {
		ok, err := rp.reg.mount(ctx, d, from)
		if err != nil {
			return 0, false, err
		}
		if !ok {
			continue
		}
		size, ok, err := rp.reg.has(ctx, d)
		if err != nil || ok {
			if ok && d != rp.config {
				rp.line(d, layerMounted, " ("+from+")")
				rp.mounted[d] = true
			}
			return size, ok, err
		}
	}
	return 0, false, nil
}

// complete: the registry has every blob; only the manifest is missing.
func (rp *rawPush) complete() bool {
	for _, d := range append([]string{rp.config}, rp.diffIDs...) {
		if _, ok := rp.size[d]; !ok {
			return false
		}
	}
	return true
}

// finish puts the manifest that names the config and the layers in
// diffID order.
func (rp *rawPush) finish(ctx context.Context) (Result, error) {
	if !rp.complete() {
		return Result{}, fmt.Errorf("the engine's save of %s lacked some of its layers: %w", rp.config, ErrLayout)
	}
	body, err := ociManifestOf(rp.config, rp.size[rp.config], rp.diffIDs, rp.size)
	if err != nil {
		return Result{}, err
	}
	digest, err := rp.reg.putManifest(ctx, PushTag, body)
	if err != nil {
		return Result{}, err
	}
	return Result{Manifest: digest, Config: rp.config, Pushed: rp.pushed, Skipped: rp.skipped}, nil
}

func (rp *rawPush) line(digest, state, detail string) {
	fmt.Fprintf(rp.out, "layer %s  %s%s\n", shortHex(digest), state, detail)
}

func shortHex(d string) string {
	h := strings.TrimPrefix(d, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

func uniq(ds []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range ds {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// isNotFound: the registry lacks it.
func isNotFound(status int) bool { return status == http.StatusNotFound }
