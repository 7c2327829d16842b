package types

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Image is an image the cluster registry holds (issue 16): one manifest
// pushed for one service, as "<app>/<service>@<digest>" (the service's
// ClusterImage). The same manifest pushed for two services is two records,
// as each service keeps its own versions for rollback.
type Image struct {
	ID      string `json:"id"`     // Ref(): Repo@Digest
	Digest  string `json:"digest"` // the manifest's, "sha256:HEX"
	Repo    string `json:"repo"`   // "<app>/<service>"
	App     string `json:"app"`
	Service string `json:"service"`
	// MediaType is the manifest's (Docker schema 2 or OCI).
	MediaType string `json:"media_type"`
	// Config is the image's config digest: the Docker image ID.
	Config string      `json:"config"`
	Blobs  []ImageBlob `json:"blobs"` // config first, then the layers
	Size   int64       `json:"size"`  // of the blobs and the manifest
	// PushedAt is when it was last pushed; GC keeps the newest per service.
	PushedAt time.Time `json:"pushed_at"`
	// Replicas are the managers (IDs) that hold the manifest and every
	// blob, sorted.
	Replicas    []string `json:"replicas"`
	CreateIndex uint64   `json:"create_index"`
	ModifyIndex uint64   `json:"modify_index"`
}

// ImageBlob is one blob of an image.
type ImageBlob struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type,omitempty"`
}

// Limits of image records.
const (
	MaxImages     = 10000 // records in one cluster
	MaxImageBlobs = 256   // blobs of one image (Docker caps layers at 127)
)

// ImageRef is the key of an image record, "<repo>@<digest>".
func ImageRef(repo, digest string) string { return repo + "@" + digest }

var (
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// repoPartRE is one component of a repository name, as the
	// distribution spec allows it and berth's app and service names fit.
	repoPartRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
)

// ValidDigest tells a sha256 digest as registries write it.
func ValidDigest(d string) bool { return digestRE.MatchString(d) }

// CheckImageRepoPart says why name (an app's or a service's) cannot be a
// component of a registry repository name, once lowercased (registries
// take only lowercase; Compose service names may have capitals).
func CheckImageRepoPart(name string) error {
	if !repoPartRE.MatchString(strings.ToLower(name)) {
		return fmt.Errorf("%q cannot name a registry repository: use letters and digits, with '.', '_' or '-' between them", name)
	}
	return nil
}

// ImageRepo is the cluster registry's repository of a service,
// "<app>/<service>" lowercased, or why the names cannot make one.
func ImageRepo(app, service string) (string, error) {
	for _, p := range []string{app, service} {
		if err := CheckImageRepoPart(p); err != nil {
			return "", err
		}
	}
	return strings.ToLower(app + "/" + service), nil
}

// HasReplica tells whether manager id holds the image.
func (im *Image) HasReplica(id string) bool { return slices.Contains(im.Replicas, id) }
