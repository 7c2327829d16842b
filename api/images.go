package api

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Image routes: the images the cluster registry holds (issue 16). The
// registry itself answers at PathRegistry on the API and cluster ports.
const (
	PathRegistry = "/v2/"                // the Docker Registry HTTP API v2
	PathImages   = "/v1/images"          // GET []Image; PUT ImagePut: the recorded Image
	PathImage    = "/v1/images/{digest}" // GET Image; ?repo= picks among services pushed the same manifest
)

// Size limits of an ImagePut's fields.
const (
	MaxImageNameBytes = 128 // App, Service
	MaxImageRepoBytes = 255 // Repo
)

// ImagePut records an image the client just pushed to the cluster registry
// of the manager it talks to: the manifest Digest in Repo
// ("<app>/<service>"). That manager reads the manifest from its own
// registry and checks it holds every blob.
type ImagePut struct {
	App     string `json:"app"`
	Service string `json:"service"`
	Repo    string `json:"repo"`
	Digest  string `json:"digest"`
}

// Image is an image record on the wire.
type Image struct {
	// Ref is "<repo>@<digest>", what a service's ClusterImage names.
	Ref       string      `json:"ref"`
	Digest    string      `json:"digest"`
	Repo      string      `json:"repo"`
	App       string      `json:"app"`
	Service   string      `json:"service"`
	MediaType string      `json:"media_type"`
	Config    string      `json:"config"` // the Docker image ID
	Blobs     []ImageBlob `json:"blobs"`
	Size      int64       `json:"size"`
	PushedAt  time.Time   `json:"pushed_at"`
	// Replicas are the IDs of the managers that hold every blob.
	Replicas []string `json:"replicas"`
	// Services are the services ("<app>/<service>") whose current spec
	// runs it; Nodes the names of the nodes whose tasks of those run it.
	Services []string `json:"services,omitempty"`
	Nodes    []string `json:"nodes,omitempty"`
}

// ImageBlob is one blob of an image.
type ImageBlob struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type,omitempty"`
}

// PutImage records an image pushed to the registry of the manager c talks
// to; it answers 400 naming the field when the manifest or a blob is not
// there.
func (c *Client) PutImage(ctx context.Context, in ImagePut) (*Image, error) {
	var out Image
	if _, err := c.do(ctx, http.MethodPut, PathImages, nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Images lists the cluster's image records, sorted by Ref.
func (c *Client) Images(ctx context.Context) ([]Image, error) {
	var out []Image
	_, err := c.do(ctx, http.MethodGet, PathImages, nil, nil, &out)
	return out, err
}

// Image returns the record of a manifest digest, or of "<repo>@<digest>";
// errors.Is(err, ErrNotFound) when there is none. A bare digest pushed for
// several services answers the least replicated of its records (what a
// client waiting for replicas wants).
func (c *Client) Image(ctx context.Context, ref string) (*Image, error) {
	im, _, err := c.ImageAfter(ctx, ref, QueryOptions{})
	return im, err
}

// ImageAfter is Image as a blocking query: with q.Index it answers once
// the record (its replicas, say) or its users changed past that index, or
// q.Wait passed.
func (c *Client) ImageAfter(ctx context.Context, ref string, q QueryOptions) (*Image, QueryMeta, error) {
	dgst, v := ref, q.values()
	if repo, d, ok := strings.Cut(ref, "@"); ok {
		dgst = d
		v.Set("repo", repo)
	}
	var out Image
	meta, err := c.do(ctx, http.MethodGet, fill(PathImage, dgst), v, nil, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}
