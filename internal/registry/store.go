package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// What the server needs to replicate images between managers and to
// record them: the registry's storage, without HTTP.

// Media types of the image manifests the cluster registry records.
const (
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
)

// Descriptor is one blob a manifest references.
type Descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// Manifest is what the server reads of an image manifest.
type Manifest struct {
	MediaType string
	Config    Descriptor
	Layers    []Descriptor
}

// Blobs lists the manifest's blobs: its config, then its layers.
func (m *Manifest) Blobs() []Descriptor {
	return append([]Descriptor{m.Config}, m.Layers...)
}

// ParseManifest reads an image manifest (Docker schema 2 or OCI). An index
// (a multi-platform list) is refused: a node pulls one image.
func ParseManifest(mediaType string, payload []byte) (*Manifest, error) {
	var raw struct {
		MediaType string       `json:"mediaType"`
		Config    Descriptor   `json:"config"`
		Layers    []Descriptor `json:"layers"`
		Manifests []Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, fmt.Errorf("the manifest is not JSON: %w", err)
	}
	if raw.MediaType != "" {
		mediaType = raw.MediaType
	}
	if raw.Manifests != nil {
		return nil, errors.New("the manifest is a multi-platform index; push one platform's image")
	}
	if mediaType != MediaTypeDockerManifest && mediaType != MediaTypeOCIManifest {
		return nil, fmt.Errorf("the manifest's media type %q is not an image manifest (Docker schema 2 or OCI)", mediaType)
	}
	m := &Manifest{MediaType: mediaType, Config: raw.Config, Layers: raw.Layers}
	for _, d := range m.Blobs() {
		if _, err := digest.Parse(d.Digest); err != nil {
			return nil, fmt.Errorf("the manifest references %q, which is not a digest", d.Digest)
		}
		if d.Size < 0 {
			return nil, fmt.Errorf("the manifest gives blob %s a negative size", d.Digest)
		}
	}
	return m, nil
}

func (r *Registry) repo(ctx context.Context, name string) (distribution.Repository, error) {
	named, err := reference.WithName(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not a repository name: %w", name, err)
	}
	return r.ns.Repository(ctx, named)
}

// HasBlob tells whether repository name holds blob dgst.
func (r *Registry) HasBlob(ctx context.Context, name, dgst string) (bool, error) {
	d, err := digest.Parse(dgst)
	if err != nil {
		return false, err
	}
	repo, err := r.repo(ctx, name)
	if err != nil {
		return false, err
	}
	_, err = repo.Blobs(ctx).Stat(ctx, d)
	if errors.Is(err, distribution.ErrBlobUnknown) {
		return false, nil
	}
	return err == nil, err
}

// OpenBlob opens blob dgst of repository name, and gives its size.
func (r *Registry) OpenBlob(ctx context.Context, name, dgst string) (io.ReadSeekCloser, int64, error) {
	d, err := digest.Parse(dgst)
	if err != nil {
		return nil, 0, err
	}
	repo, err := r.repo(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	desc, err := repo.Blobs(ctx).Stat(ctx, d)
	if err != nil {
		return nil, 0, fmt.Errorf("blob %s of %s: %w", dgst, name, err)
	}
	rc, err := repo.Blobs(ctx).Open(ctx, d)
	if err != nil {
		return nil, 0, fmt.Errorf("open blob %s of %s: %w", dgst, name, err)
	}
	return rc, desc.Size, nil
}

// PutBlob stores blob dgst in repository name from body, checking the
// digest and size, within the size limit (errors.Is(err, ErrFull)).
func (r *Registry) PutBlob(ctx context.Context, name, dgst string, size int64, body io.Reader) error {
	d, err := digest.Parse(dgst)
	if err != nil {
		return err
	}
	repo, err := r.repo(ctx, name)
	if err != nil {
		return err
	}
	if err := r.beginUpload(); err != nil {
		return err
	}
	defer r.endUpload()
	if err := r.take(size); err != nil {
		return err
	}
	bw, err := repo.Blobs(ctx).Create(ctx)
	if err != nil {
		return fmt.Errorf("start blob %s: %w", dgst, err)
	}
	if _, err := io.Copy(bw, io.LimitReader(body, size+1)); err != nil {
		_ = bw.Cancel(ctx)
		return fmt.Errorf("write blob %s: %w", dgst, err)
	}
	if _, err := bw.Commit(ctx, distribution.Descriptor{Digest: d, Size: size}); err != nil {
		_ = bw.Cancel(ctx)
		return fmt.Errorf("commit blob %s: %w", dgst, err)
	}
	return nil
}

// GetManifest reads manifest dgst of repository name: its media type and
// bytes.
func (r *Registry) GetManifest(ctx context.Context, name, dgst string) (string, []byte, error) {
	d, err := digest.Parse(dgst)
	if err != nil {
		return "", nil, err
	}
	repo, err := r.repo(ctx, name)
	if err != nil {
		return "", nil, err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return "", nil, err
	}
	m, err := ms.Get(ctx, d)
	if err != nil {
		return "", nil, fmt.Errorf("manifest %s of %s: %w", dgst, name, err)
	}
	mt, payload, err := m.Payload()
	return mt, payload, err
}

// HasManifest tells whether repository name holds manifest dgst.
func (r *Registry) HasManifest(ctx context.Context, name, dgst string) (bool, error) {
	d, err := digest.Parse(dgst)
	if err != nil {
		return false, err
	}
	repo, err := r.repo(ctx, name)
	if err != nil {
		return false, err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return false, err
	}
	return ms.Exists(ctx, d)
}

// PutManifest stores a manifest in repository name (its blobs must be
// there already) and checks that it has digest dgst.
func (r *Registry) PutManifest(ctx context.Context, name, dgst, mediaType string, payload []byte) error {
	want, err := digest.Parse(dgst)
	if err != nil {
		return err
	}
	if got := digest.FromBytes(payload); got != want {
		return fmt.Errorf("manifest of %s: its bytes have digest %s, not %s", name, got, want)
	}
	m, _, err := distribution.UnmarshalManifest(mediaType, payload)
	if err != nil {
		return fmt.Errorf("manifest %s of %s: %w", dgst, name, err)
	}
	repo, err := r.repo(ctx, name)
	if err != nil {
		return err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return err
	}
	if _, err := ms.Put(ctx, m); err != nil {
		return fmt.Errorf("store manifest %s of %s: %w", dgst, name, err)
	}
	return nil
}
