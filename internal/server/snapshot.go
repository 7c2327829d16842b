package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/raftnode"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// Snapshots of the cluster state (berth snapshot save/restore). A plain
// snapshot is raftnode's file. `save --with-images` puts an images section
// (snapimages.go) in front of that same file, so a restore finds the blobs
// first, writes them to the registry, and only then hands the state to
// Raft: a damaged section is refused before the state changes.

// maxSnapshotBytes bounds the state part of an uploaded snapshot; the
// images section is bounded by the registry's own limit.
const maxSnapshotBytes = 1 << 30

func (s *Server) saveSnapshot(w http.ResponseWriter, r *http.Request) error {
	withImages := false
	switch q := r.URL.Query().Get("images"); q {
	case "", "false":
	case "true":
		withImages = true
	default:
		return badRequest("images", "must be true or false, not %q", q)
	}
	var plan []exportImage
	if withImages {
		var err error
		if plan, err = s.exportPlan(r.Context()); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	cw := &countingWriter{w: w}
	var err error
	if withImages {
		err = s.writeImages(r.Context(), cw, plan)
	}
	if err == nil {
		_, err = s.raft.SaveSnapshot(r.Context(), cw)
	}
	if err != nil && cw.n > 0 {
		// The status is sent: an error answer now would end a body that
		// looks whole. Cut the stream instead, so the CLI sees an
		// incomplete file and deletes it.
		s.log.Warn("a snapshot save failed midway", "err", err)
		panic(http.ErrAbortHandler)
	}
	return err
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (s *Server) restoreSnapshot(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	body := http.MaxBytesReader(w, r.Body, maxSnapshotBytes+s.registry.MaxBytes()+maxImagesHeader)
	br := bufio.NewReaderSize(body, 64<<10)
	// Membership is this cluster's, not the saved one's: the managers that
	// run now must still find each other (image replication dials the
	// addresses in the cluster record).
	var managers []types.Manager
	if cl := s.store.View().Cluster(); cl != nil {
		managers = slices.Clone(cl.Managers)
	}
	var imported []importedImage
	if hasImagesSection(br) {
		var err error
		if imported, err = s.readImages(ctx, br); err != nil {
			return err
		}
	}
	if err := s.raft.RestoreSnapshot(ctx, br); err != nil {
		return badRequest("", "restore snapshot: %v", err)
	}
	_, _ = io.Copy(io.Discard, body)
	s.log.Info("state restored from a snapshot", "images", len(imported))
	if err := s.afterRestore(ctx, managers, imported); err != nil {
		return fmt.Errorf("the state is restored, but %w", err)
	}
	out := api.SnapshotRestored{Images: s.neededImages(ctx, s.store.View())}
	for i := range out.Images {
		out.Images[i].Carried = slices.ContainsFunc(imported, func(im importedImage) bool { return im.Ref == out.Images[i].Ref })
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// afterRestore puts the carried manifests in the registry, gives the
// cluster record this cluster's managers back, and records this manager
// as holding the carried images, so the replicator on every other
// manager fetches them from here.
func (s *Server) afterRestore(ctx context.Context, managers []types.Manager, imported []importedImage) error {
	for _, im := range imported {
		if err := s.registry.PutManifest(ctx, im.Repo, im.Digest, im.MediaType, im.manifest); err != nil {
			return fmt.Errorf("its image %s could not be stored: %w", im.Ref, err)
		}
	}
	servers, err := s.raft.Servers(ctx)
	if err != nil {
		return fmt.Errorf("the managers could not be listed: %w", err)
	}
	// This cluster's managers: voters, and those that joined before the
	// restore and are not voters yet.
	member := func(id string) bool {
		return slices.ContainsFunc(servers, func(sv raftnode.Server) bool { return sv.ID == id }) ||
			slices.ContainsFunc(managers, func(m types.Manager) bool { return m.ID == id })
	}
	for _, m := range managers {
		if _, err := s.Commit(ctx, &state.UpsertManager{Manager: m}); err != nil {
			return fmt.Errorf("the managers could not be recorded: %w", err)
		}
	}
	if cl := s.store.View().Cluster(); cl != nil {
		for _, m := range cl.Managers {
			if !member(m.ID) {
				if _, err := s.Commit(ctx, &state.RemoveManager{ID: m.ID}); err != nil {
					return fmt.Errorf("the saved cluster's managers could not be removed: %w", err)
				}
			}
		}
	}
	v := s.store.View()
	for _, im := range imported {
		if rec := v.Image(im.Ref); rec != nil && s.holds(ctx, rec) {
			if _, err := s.Commit(ctx, &state.ImageReplica{ID: rec.ID, ManagerID: s.id}); err != nil {
				return fmt.Errorf("image %s could not be recorded as held: %w", im.Ref, err)
			}
		}
	}
	return nil
}

// snapshotImages answers the images a snapshot saved now would need.
func (s *Server) snapshotImages(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.neededImages(r.Context(), s.store.View()))
	return nil
}

// neededImages lists the images the apps in v need, one per service that
// names one, sorted by app and service: the rule that saving, restoring
// and the listing share. A cluster image is present when this manager or
// another manager of the cluster holds it.
func (s *Server) neededImages(ctx context.Context, v *state.View) []api.SnapshotImage {
	managers := map[string]bool{}
	if cl := v.Cluster(); cl != nil {
		for _, m := range cl.Managers {
			managers[m.ID] = m.ID != s.id
		}
	}
	out := []api.SnapshotImage{}
	for _, app := range v.Apps() {
		for _, svc := range app.Services {
			e := api.SnapshotImage{App: app.Name, Service: svc.Name, Ref: svc.Image, Build: svc.Build != nil, Present: true}
			if svc.ClusterImage != "" {
				e.Ref, e.Cluster, e.Present = svc.ClusterImage, true, false
				if im := v.Image(svc.ClusterImage); im != nil {
					e.Size = im.Size
					e.Present = s.holds(ctx, im) || slices.ContainsFunc(im.Replicas, func(id string) bool { return managers[id] })
				}
			}
			if e.Ref != "" {
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b api.SnapshotImage) int {
		if a.App != b.App {
			return strings.Compare(a.App, b.App)
		}
		return strings.Compare(a.Service, b.Service)
	})
	return out
}
