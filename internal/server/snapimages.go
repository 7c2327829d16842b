package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/distribution/distribution/v3"

	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/types"
)

// The images section of `snapshot save --with-images`, in front of the
// state file:
//
//	berth-snapshot-images v1
//	{"images":[{"ref":..,"repo":..,"digest":..,"media_type":..,"manifest_size":N,"blobs":[..]}]}
//	for each image: its manifest, then each of its blobs not sent before
//	sha256:<hex of the header line and everything after it, to here>
//	<the state: raftnode's snapshot file, unchanged>
//
// The state goes last so that a restore reads it only once the blobs are
// safely in the registry. Every blob is checked against its digest as it
// is written and the checksum covers the header too, so a cut or altered
// section is refused before the state changes; blobs it already wrote
// belong to no record, and the registry sweep removes them. An older
// snapshot (the state file alone) still restores; a manager older than
// this section refuses it as not a berth snapshot.
const (
	imagesMagic = "berth-snapshot-images v1"
	// maxImagesHeader bounds the header line; maxManifestBytes one
	// manifest, maxManifestsBytes all of them (held in memory).
	maxImagesHeader   = 8 << 20
	maxManifestBytes  = 4 << 20
	maxManifestsBytes = 64 << 20
)

type imagesHeader struct {
	Images []imageEntry `json:"images"`
}

type imageEntry struct {
	Ref          string            `json:"ref"`
	Repo         string            `json:"repo"`
	Digest       string            `json:"digest"`
	MediaType    string            `json:"media_type"`
	ManifestSize int64             `json:"manifest_size"`
	Blobs        []types.ImageBlob `json:"blobs"`
}

// exportImage is an image to save: its entry and its manifest.
type exportImage struct {
	imageEntry
	manifest []byte
}

// importedImage is an image a restore carried into the registry; its
// manifest goes in once the state is restored.
type importedImage struct {
	imageEntry
	manifest []byte
}

// exportPlan lists the cluster images the apps use, which this manager
// must hold: a snapshot that says it carries the images carries all.
func (s *Server) exportPlan(ctx context.Context) ([]exportImage, error) {
	v := s.store.View()
	var plan []exportImage
	seen := map[string]bool{}
	var total int
	for _, need := range s.neededImages(ctx, v) {
		if !need.Cluster || seen[need.Ref] {
			continue
		}
		seen[need.Ref] = true
		im := v.Image(need.Ref)
		if im == nil || !s.holds(ctx, im) {
			return nil, &apiError{status: http.StatusConflict, msg: fmt.Sprintf(
				"this manager's registry lacks image %s of %s/%s (it may still be replicating here): try again, save from another manager, or save without --with-images",
				need.Ref, need.App, need.Service)}
		}
		mt, payload, err := s.registry.GetManifest(ctx, im.Repo, im.Digest)
		if err != nil {
			return nil, fmt.Errorf("read the manifest of %s: %w", im.ID, err)
		}
		if total += len(payload); total > maxManifestsBytes {
			return nil, badRequest("images", "the apps' image manifests pass %d bytes; save without --with-images", maxManifestsBytes)
		}
		plan = append(plan, exportImage{imageEntry: imageEntry{Ref: im.ID, Repo: im.Repo, Digest: im.Digest,
			MediaType: mt, ManifestSize: int64(len(payload)), Blobs: im.Blobs}, manifest: payload})
	}
	return plan, nil
}

// writeImages streams the images section of plan into w, each blob
// copied from the registry as it is read.
func (s *Server) writeImages(ctx context.Context, w io.Writer, plan []exportImage) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString(imagesMagic + "\n"); err != nil {
		return err
	}
	sum := sha256.New()
	out := io.MultiWriter(bw, sum)
	h := imagesHeader{Images: []imageEntry{}}
	for _, im := range plan {
		h.Images = append(h.Images, im.imageEntry)
	}
	line, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if _, err := out.Write(append(line, '\n')); err != nil {
		return err
	}
	sent := map[string]bool{}
	for _, im := range plan {
		if _, err := out.Write(im.manifest); err != nil {
			return err
		}
		for _, b := range im.Blobs {
			if sent[b.Digest] {
				continue
			}
			sent[b.Digest] = true
			if err := s.copyBlob(ctx, out, im.Repo, b); err != nil {
				return err
			}
		}
	}
	if _, err := fmt.Fprintf(bw, "sha256:%x\n", sum.Sum(nil)); err != nil {
		return err
	}
	return bw.Flush()
}

func (s *Server) copyBlob(ctx context.Context, w io.Writer, repo string, b types.ImageBlob) error {
	rc, size, err := s.registry.OpenBlob(ctx, repo, b.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	if size != b.Size {
		return fmt.Errorf("blob %s of %s holds %d bytes, its record %d", b.Digest, repo, size, b.Size)
	}
	_, err = io.CopyN(w, rc, size)
	return err
}

// hasImagesSection tells whether the upload starts with an images section.
func hasImagesSection(br *bufio.Reader) bool {
	p, _ := br.Peek(len(imagesMagic) + 1)
	return string(p) == imagesMagic+"\n"
}

// damaged is the answer to an images section that cannot be used.
func damaged(format string, args ...any) error {
	return badRequest("", "the snapshot's images section is cut short or damaged (%s); nothing was restored: save the snapshot again", fmt.Sprintf(format, args...))
}

// readImages reads the images section, writing its blobs to the registry,
// and returns the images with their manifests. On error the state is
// untouched.
func (s *Server) readImages(ctx context.Context, br *bufio.Reader) ([]importedImage, error) {
	if _, err := br.Discard(len(imagesMagic) + 1); err != nil {
		return nil, damaged("%v", err)
	}
	line, err := readLongLine(br, maxImagesHeader)
	if err != nil {
		return nil, damaged("its header: %v", err)
	}
	var h imagesHeader
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, damaged("its header is not JSON: %v", err)
	}
	if err := checkImagesHeader(&h); err != nil {
		return nil, damaged("%v", err)
	}
	if err := s.checkRoom(ctx, &h); err != nil {
		return nil, err
	}
	sum := sha256.New()
	sum.Write(append(line, '\n'))
	tr := io.TeeReader(br, sum)
	var out []importedImage
	written := map[string]string{} // blob digest -> the repo it went to
	for _, e := range h.Images {
		manifest := make([]byte, e.ManifestSize)
		if _, err := io.ReadFull(tr, manifest); err != nil {
			return nil, damaged("the manifest of %s: %v", e.Ref, err)
		}
		if err := checkManifest(e, manifest); err != nil {
			return nil, damaged("%v", err)
		}
		for _, b := range e.Blobs {
			if err := s.importBlob(ctx, tr, e.Repo, b, written); err != nil {
				return nil, err
			}
		}
		out = append(out, importedImage{imageEntry: e, manifest: manifest})
	}
	tail, err := readLongLine(br, 128)
	if err != nil {
		return nil, damaged("no checksum after the images: %v", err)
	}
	if want, ok := strings.CutPrefix(string(tail), "sha256:"); !ok || want != hex.EncodeToString(sum.Sum(nil)) {
		return nil, damaged("its checksum does not match its contents")
	}
	return out, nil
}

// importBlob writes one blob of repo from r, unless the section sent it
// before (then it is linked from the repo it went to) or the registry has
// it (then its bytes are only checksummed).
func (s *Server) importBlob(ctx context.Context, r io.Reader, repo string, b types.ImageBlob, written map[string]string) error {
	has, err := s.registry.HasBlob(ctx, repo, b.Digest)
	if err != nil {
		return err
	}
	from, sent := written[b.Digest]
	switch {
	case sent && has:
		return nil
	case sent:
		rc, size, err := s.registry.OpenBlob(ctx, from, b.Digest)
		if err != nil {
			return err
		}
		defer rc.Close()
		return s.putBlob(ctx, repo, b.Digest, size, rc)
	}
	written[b.Digest] = repo
	if has {
		if _, err := io.CopyN(io.Discard, r, b.Size); err != nil {
			return damaged("blob %s: %v", b.Digest, err)
		}
		return nil
	}
	cr := &countingReader{r: io.LimitReader(r, b.Size)}
	err = s.putBlob(ctx, repo, b.Digest, b.Size, cr)
	if err != nil && cr.n < b.Size && !errors.Is(err, registry.ErrFull) {
		return damaged("the file ends inside blob %s, after %d of its %d bytes", b.Digest, cr.n, b.Size)
	}
	return err
}

func (s *Server) putBlob(ctx context.Context, repo, dgst string, size int64, r io.Reader) error {
	err := s.registry.PutBlob(ctx, repo, dgst, size, r)
	switch {
	case errors.Is(err, registry.ErrFull):
		return &apiError{status: http.StatusInsufficientStorage, msg: err.Error() + "; nothing was restored"}
	case errors.As(err, new(distribution.ErrBlobInvalidDigest)), errors.Is(err, distribution.ErrBlobInvalidLength):
		return damaged("blob %s of %s does not match its digest", dgst, repo)
	case err != nil:
		return fmt.Errorf("store blob %s of %s in this manager's registry: %w", dgst, repo, err)
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// checkRoom refuses, before anything is written, a section whose blobs
// this manager lacks do not fit under --registry-max-size.
func (s *Server) checkRoom(ctx context.Context, h *imagesHeader) error {
	var need int64
	counted := map[string]bool{}
	for _, e := range h.Images {
		need += e.ManifestSize
		for _, b := range e.Blobs {
			if counted[b.Digest] {
				continue
			}
			counted[b.Digest] = true
			if has, err := s.registry.HasBlob(ctx, e.Repo, b.Digest); err != nil || !has {
				need += b.Size
			}
		}
	}
	used, err := s.registry.Usage()
	if err != nil {
		return fmt.Errorf("measure the registry: %w", err)
	}
	if limit := s.registry.MaxBytes(); used+need > limit {
		return &apiError{status: http.StatusInsufficientStorage, msg: fmt.Sprintf(
			"the snapshot carries %s of images this manager's registry lacks, and the registry has %s of %s free: raise --registry-max-size, or restore a snapshot saved without --with-images; nothing was restored",
			registry.FormatSize(need), registry.FormatSize(max(0, limit-used)), registry.FormatSize(limit))}
	}
	return nil
}

// checkImagesHeader bounds and validates the header's entries.
func checkImagesHeader(h *imagesHeader) error {
	if len(h.Images) > types.MaxImages {
		return fmt.Errorf("%d images, more than %d", len(h.Images), types.MaxImages)
	}
	var manifests int64
	for _, e := range h.Images {
		if !types.ValidDigest(e.Digest) || !validRepo(e.Repo) || e.Ref != types.ImageRef(e.Repo, e.Digest) {
			return fmt.Errorf("image %q is not a cluster image reference", e.Ref)
		}
		if e.ManifestSize <= 0 || e.ManifestSize > maxManifestBytes {
			return fmt.Errorf("image %s: a manifest of %d bytes", e.Ref, e.ManifestSize)
		}
		if manifests += e.ManifestSize; manifests > maxManifestsBytes {
			return fmt.Errorf("manifests of more than %d bytes", maxManifestsBytes)
		}
		if len(e.Blobs) == 0 || len(e.Blobs) > types.MaxImageBlobs {
			return fmt.Errorf("image %s: %d blobs", e.Ref, len(e.Blobs))
		}
		for _, b := range e.Blobs {
			if !types.ValidDigest(b.Digest) || b.Size < 0 {
				return fmt.Errorf("image %s: blob %q of %d bytes", e.Ref, b.Digest, b.Size)
			}
		}
	}
	return nil
}

func validRepo(repo string) bool {
	app, svc, ok := strings.Cut(repo, "/")
	if !ok {
		return false
	}
	r, err := types.ImageRepo(app, svc)
	return err == nil && r == repo
}

// checkManifest checks a manifest against its entry: its digest, and
// that it references exactly the entry's blobs.
func checkManifest(e imageEntry, manifest []byte) error {
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(manifest)); got != e.Digest {
		return fmt.Errorf("the manifest of %s has digest %s", e.Ref, got)
	}
	m, err := registry.ParseManifest(e.MediaType, manifest)
	if err != nil {
		return fmt.Errorf("the manifest of %s: %w", e.Ref, err)
	}
	blobs := m.Blobs()
	if len(blobs) != len(e.Blobs) {
		return fmt.Errorf("the manifest of %s references %d blobs, the header %d", e.Ref, len(blobs), len(e.Blobs))
	}
	for i, b := range blobs {
		if b.Digest != e.Blobs[i].Digest || b.Size != e.Blobs[i].Size {
			return fmt.Errorf("the manifest of %s does not reference blob %s", e.Ref, e.Blobs[i].Digest)
		}
	}
	return nil
}

// readLongLine reads a line of at most limit bytes, without its newline.
func readLongLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > limit+1 {
			return nil, fmt.Errorf("a line longer than %d bytes", limit)
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(line, []byte("\n")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}
