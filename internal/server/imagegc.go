package server

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// Image GC (issue 16). The leader deletes the records no service needs:
// it keeps, per (app, service), the image its current spec runs and the
// keepPrevious newest others (for rollback); a service or app that is gone
// keeps none. Then every manager sweeps from its registry the blobs that
// no remaining record references. Nothing younger than the grace
// (Config.RegistryGCGrace) goes, nor an image of a service no app has
// while its app pushed within the grace: a push under way, or pushed and
// not yet submitted, has no user yet.

// The grace a manager takes by default, and the bounds of
// --registry-gc-grace (hidden: tests shorten it to watch GC on a cluster).
// The grace also paces GC (gcEvery), so one knob makes a test quick.
const (
	DefaultRegistryGCGrace = 10 * time.Minute
	MinRegistryGCGrace     = time.Second
	MaxRegistryGCGrace     = 24 * time.Hour
)

// CheckRegistryGCGrace refuses a grace out of bounds (0 is the default):
// shorter than a second races a push between its blobs and its record.
func CheckRegistryGCGrace(grace time.Duration) error {
	if grace != 0 && (grace < MinRegistryGCGrace || grace > MaxRegistryGCGrace) {
		return fmt.Errorf("--registry-gc-grace must be between %s and %s, e.g. 10m, not %s", MinRegistryGCGrace, MaxRegistryGCGrace, grace)
	}
	return nil
}

// keepPrevious is how many images a service keeps besides its current one.
const keepPrevious = 2

// gcEvery is how often a GC pass runs: half the grace (so an unreferenced
// blob goes within about 1.5 graces), between a second and ceiling.
func gcEvery(grace, ceiling time.Duration) time.Duration {
	return min(max(grace/2, time.Second), ceiling)
}

// collectImages runs the leader's part until ctx ends: every minute with
// the default grace.
func (s *Server) collectImages(ctx context.Context) error {
	grace := s.cfg.RegistryGCGrace
	for sleepCtx(ctx, gcEvery(grace, time.Minute)) {
		s.collectImagesOnce(ctx, grace)
	}
	return nil
}

func (s *Server) collectImagesOnce(ctx context.Context, grace time.Duration) {
	for _, id := range collectableImages(s.store.View(), s.clock.Now(), grace) {
		if _, err := s.Commit(ctx, &state.DeleteImage{ID: id}); err != nil {
			s.log.Warn("image GC: could not delete a record; will retry", "image", id, "err", err)
			return
		}
		s.log.Info("image GC: removed an image no service version needs", "image", id)
	}
}

// collectableImages are the records GC deletes now (see above).
func collectableImages(v *state.View, now time.Time, grace time.Duration) []string {
	inUse := map[string]bool{}
	services := map[string]bool{}
	for _, app := range v.Apps() {
		for _, svc := range app.Services {
			services[types.ServiceID(app.Name, svc.Name)] = true
			if svc.ClusterImage != "" {
				inUse[svc.ClusterImage] = true
			}
		}
	}
	groups := map[string][]*types.Image{}
	lastPush := map[string]time.Time{} // per app
	for _, im := range v.Images() {
		k := types.ServiceID(im.App, im.Service)
		groups[k] = append(groups[k], im)
		if im.PushedAt.After(lastPush[im.App]) {
			lastPush[im.App] = im.PushedAt
		}
	}
	var out []string
	for k, ims := range groups {
		slices.SortFunc(ims, func(a, b *types.Image) int { return b.PushedAt.Compare(a.PushedAt) })
		kept := 0
		for _, im := range ims {
			switch {
			case inUse[im.ID]:
				continue
			case services[k] && kept < keepPrevious:
				kept++
				continue
			case now.Sub(im.PushedAt) < grace:
				continue
			case !services[k] && now.Sub(lastPush[im.App]) < grace:
				// A service no app has yet: the first up of an app
				// pushes its images one after another and submits once
				// all are on two managers, so its first image may be
				// older than the grace by then. Gone or not yet, its
				// images stay while the app's pushes go on.
				continue
			}
			out = append(out, im.ID)
		}
	}
	slices.Sort(out)
	return out
}

// sweepRegistry runs this manager's sweep until ctx ends: every five
// minutes with the default grace.
func (s *Server) sweepRegistry(ctx context.Context) {
	grace := s.cfg.RegistryGCGrace
	for sleepCtx(ctx, gcEvery(grace, 5*time.Minute)) {
		s.sweepOnce(ctx, grace)
	}
}

// sweepOnce deletes the blobs no image record references and none has
// touched within grace.
func (s *Server) sweepOnce(ctx context.Context, grace time.Duration) {
	keep := map[string]bool{}
	for _, im := range s.store.View().Images() {
		keep[im.Digest] = true
		for _, b := range im.Blobs {
			keep[b.Digest] = true
		}
	}
	res, err := s.registry.Sweep(ctx, func(d string) bool { return keep[d] }, grace, s.clock.Now())
	if err != nil {
		s.log.Warn("registry sweep failed; will retry", "err", err)
	}
	if len(res.Removed) > 0 {
		s.log.Info("registry sweep removed unreferenced blobs", "blobs", len(res.Removed), "bytes", res.Freed)
	}
}
