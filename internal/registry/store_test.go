package registry

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func digestOf(s string) string { return digest.FromString(s).String() }

// putImage stores an image of the given layer contents in repo and returns
// its manifest digest and its blobs' digests (config first).
func putImage(t *testing.T, r *Registry, repo string, layers ...string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	config := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":"` + repo + strings.Join(layers, ",") + `"}`
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeDockerManifest,
		"config":        Descriptor{MediaType: "application/vnd.docker.container.image.v1+json", Digest: digestOf(config), Size: int64(len(config))},
	}
	blobs := []string{digestOf(config)}
	var ls []Descriptor
	for _, l := range layers {
		ls = append(ls, Descriptor{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Digest: digestOf(l), Size: int64(len(l))})
		blobs = append(blobs, digestOf(l))
	}
	m["layers"] = ls
	for _, c := range append([]string{config}, layers...) {
		if err := r.PutBlob(ctx, repo, digestOf(c), int64(len(c)), strings.NewReader(c)); err != nil {
			t.Fatal(err)
		}
	}
	payload, _ := json.Marshal(m)
	dgst := digest.FromBytes(payload).String()
	if err := r.PutManifest(ctx, repo, dgst, MediaTypeDockerManifest, payload); err != nil {
		t.Fatal(err)
	}
	return dgst, blobs
}

func TestPutAndGetManifest(t *testing.T) {
	r := newRegistry(t, 0)
	ctx := context.Background()
	dgst, blobs := putImage(t, r, "app/svc", "layer one", "layer two")
	mt, payload, err := r.GetManifest(ctx, "app/svc", dgst)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(mt, payload)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Blobs(); len(got) != 3 || got[0].Digest != blobs[0] || got[2].Digest != blobs[2] {
		t.Fatalf("blobs %+v, want %v", got, blobs)
	}
	if ok, _ := r.HasManifest(ctx, "app/svc", dgst); !ok {
		t.Error("HasManifest: false after PutManifest")
	}
	if ok, _ := r.HasBlob(ctx, "other/repo", blobs[1]); ok {
		t.Error("a blob is linked into a repository it was never put in")
	}
	rc, size, err := r.OpenBlob(ctx, "app/svc", blobs[1])
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if size != int64(len("layer one")) {
		t.Errorf("size %d", size)
	}
}

func TestPutBlobRefusals(t *testing.T) {
	r := newRegistry(t, 1024)
	ctx := context.Background()
	if err := r.PutBlob(ctx, "a/b", digestOf("other"), 4, strings.NewReader("data")); err == nil {
		t.Error("a blob whose bytes do not match its digest was stored")
	}
	big := strings.Repeat("z", 2048)
	if err := r.PutBlob(ctx, "a/b", digestOf(big), int64(len(big)), strings.NewReader(big)); !errors.Is(err, ErrFull) {
		t.Errorf("a blob past the limit: %v, want ErrFull", err)
	}
	if err := r.PutManifest(ctx, "a/b", digestOf("{}"), MediaTypeDockerManifest, []byte(`{"schemaVersion":2}`)); err == nil {
		t.Error("a manifest whose digest does not match was stored")
	}
}

func TestParseManifestRefuses(t *testing.T) {
	for name, payload := range map[string]string{
		"not json":   `{`,
		"index":      `{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`,
		"schema1":    `{"mediaType":"application/vnd.docker.distribution.manifest.v1+json"}`,
		"bad digest": `{"mediaType":"` + MediaTypeOCIManifest + `","config":{"digest":"sha256:zz"}}`,
	} {
		if _, err := ParseManifest("", []byte(payload)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
