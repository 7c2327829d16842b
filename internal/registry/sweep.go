package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/registry/storage"
)

// SweepResult says what a sweep removed.
type SweepResult struct {
	Removed []string // blob digests
	Freed   int64    // bytes
}

// Sweep deletes the blobs that keep does not want, except young ones: a
// push under way has no image record yet, so a blob is spared while its
// data, any repository's link to it, or a manifest that references it was
// written less than grace ago (a push whose layers were "already there"
// writes only links and a manifest). Links to removed blobs go too, so a
// repository does not claim what it lost.
func (r *Registry) Sweep(ctx context.Context, keep func(digest string) bool, grace time.Duration, now time.Time) (SweepResult, error) {
	var res SweepResult
	r.purgeUploads(ctx, now.Add(-uploadMaxAge))
	cutoff := now.Add(-grace)
	young, err := r.youngDigests(cutoff)
	if err != nil {
		return res, err
	}
	vacuum := storage.NewVacuum(ctx, r.driver)
	removed := map[string]bool{}
	err = walkFiles(filepath.Join(r.blobsDir(), "sha256"), func(path string, info fs.FileInfo) error {
		if info.Name() != "data" {
			return nil
		}
		dgst := "sha256:" + filepath.Base(filepath.Dir(path))
		if keep(dgst) || young[dgst] || info.ModTime().After(cutoff) {
			return nil
		}
		if err := vacuum.RemoveBlob(dgst); err != nil {
			return fmt.Errorf("remove blob %s: %w", dgst, err)
		}
		removed[dgst] = true
		res.Removed = append(res.Removed, dgst)
		res.Freed += info.Size()
		return nil
	})
	if err != nil || len(removed) == 0 {
		return res, err
	}
	return res, r.unlink(removed)
}

// uploadMaxAge is how long an unfinished upload is kept (a client may
// resume one); older ones are deleted.
const uploadMaxAge = 24 * time.Hour

// purgeUploads deletes the uploads started before olderThan, with the
// library's purge, whose panics must not take the manager down.
func (r *Registry) purgeUploads(ctx context.Context, olderThan time.Time) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("cluster registry: purging old uploads failed", "panic", p)
		}
	}()
	if _, errs := storage.PurgeUploads(ctx, r.driver, olderThan, true); len(errs) > 0 {
		r.log.Warn("cluster registry: some old uploads could not be purged", "err", errors.Join(errs...))
	}
}

// youngDigests are the blobs that repository links written after cutoff
// name, and those that such links' manifests reference.
func (r *Registry) youngDigests(cutoff time.Time) (map[string]bool, error) {
	young := map[string]bool{}
	err := walkFiles(r.reposDir(), func(path string, info fs.FileInfo) error {
		if info.Name() != "link" || !info.ModTime().After(cutoff) {
			return nil
		}
		dgst, err := readLink(path)
		if err != nil {
			return nil // not ours to judge; the library wrote it
		}
		young[dgst] = true
		if strings.Contains(path, string(filepath.Separator)+"_manifests"+string(filepath.Separator)) {
			for _, d := range r.referenced(dgst) {
				young[d] = true
			}
		}
		return nil
	})
	return young, err
}

// referenced lists the blobs manifest dgst references, read from the blob
// store; none when it is not an image manifest.
func (r *Registry) referenced(dgst string) []string {
	hex, ok := strings.CutPrefix(dgst, "sha256:")
	if !ok || len(hex) < 2 {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(r.blobsDir(), "sha256", hex[:2], hex, "data"))
	if err != nil {
		return nil
	}
	m, err := ParseManifest("", b)
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range m.Blobs() {
		out = append(out, d.Digest)
	}
	return out
}

// unlink removes the repositories' links to removed blobs (layer links,
// manifest revisions, tag index entries) and the tags whose current
// manifest went.
func (r *Registry) unlink(removed map[string]bool) error {
	var dirs []string
	err := walkFiles(r.reposDir(), func(path string, info fs.FileInfo) error {
		if info.Name() != "link" {
			return nil
		}
		dgst, err := readLink(path)
		if err != nil || !removed[dgst] {
			return nil
		}
		dir := filepath.Dir(path)
		if filepath.Base(dir) == "current" { // _manifests/tags/<tag>/current/link
			dir = filepath.Dir(dir)
		}
		dirs = append(dirs, dir)
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("remove link %s: %w", d, err)
		}
	}
	return nil
}

func readLink(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	d := strings.TrimSpace(string(b))
	if !strings.HasPrefix(d, "sha256:") {
		return "", errors.New("not a sha256 link")
	}
	return d, nil
}

// walkFiles calls fn for every regular file under root; a missing root or
// a file that goes during the walk is no error.
func walkFiles(root string, fn func(path string, info fs.FileInfo) error) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		return fn(path, info)
	})
}
