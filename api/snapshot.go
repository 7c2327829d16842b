package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
)

// PathSnapshotImages lists the images the apps of the cluster state need,
// as a snapshot saved now would (GET []SnapshotImage).
const PathSnapshotImages = "/v1/snapshot/images"

// SnapshotImage is one image a service of the saved (or restored) state
// needs.
type SnapshotImage struct {
	App     string `json:"app"`
	Service string `json:"service"`
	// Ref is the service's ClusterImage ("REPO@sha256:HEX", in the cluster
	// registry) when Cluster, else the image the nodes pull themselves.
	Ref     string `json:"ref"`
	Cluster bool   `json:"cluster"`
	// Size is the image's bytes in the cluster registry; 0 when not known
	// (an image the nodes pull, or a record the cluster lacks).
	Size int64 `json:"size"`
	// Present: some manager of the cluster holds it (always true of an
	// image the nodes pull themselves).
	Present bool `json:"present"`
	// Build: the service has a build section, so `berth up` remakes it.
	Build bool `json:"build,omitempty"`
	// Carried: the snapshot file holds its blobs.
	Carried bool `json:"carried,omitempty"`
}

// SnapshotRestored answers a restore: the images the restored apps need,
// and whether the cluster has them now.
type SnapshotRestored struct {
	Images []SnapshotImage `json:"images"`
}

// SnapshotImages lists the images a snapshot saved now would need.
func (c *Client) SnapshotImages(ctx context.Context) ([]SnapshotImage, error) {
	var out []SnapshotImage
	_, err := c.do(ctx, http.MethodGet, PathSnapshotImages, nil, nil, &out)
	return out, err
}

// SaveSnapshotWithImages streams a snapshot into w that carries, ahead of
// the state, the cluster-registry images its apps use (blobs and
// manifests), so that a restore onto another cluster has them.
func (c *Client) SaveSnapshotWithImages(ctx context.Context, w io.Writer) error {
	rc, err := c.stream(ctx, PathSnapshot, url.Values{"images": []string{"true"}})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// RestoreSnapshotImages is RestoreSnapshot that also answers which images
// the restored apps need and whether the cluster has them.
func (c *Client) RestoreSnapshotImages(ctx context.Context, r io.Reader) (*SnapshotRestored, error) {
	var out SnapshotRestored
	err := c.uploadJSON(ctx, PathSnapshot, r, func(body io.Reader) error {
		return json.NewDecoder(io.LimitReader(body, MaxRequestBytes)).Decode(&out)
	})
	return &out, err
}
