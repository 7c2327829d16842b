package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/raftnode"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// Replication of the cluster registry: every manager holds every image,
// so losing any one loses none. Each manager watches the image records
// and fetches what it lacks from a manager that has it (one in Replicas),
// over the cluster port with its manager certificate, then records itself
// as a replica. A manager that joins later catches up the same way.

// Internal routes on the cluster port (managers only, on the leader): a
// manager commits an image record, or that it holds one, through them.
const (
	pathImageRecords  = "/v1/internal/images"         // PUT state.UpsertImage: the stored types.Image
	pathImageReplicas = "/v1/internal/image-replicas" // POST state.ImageReplica: the stored types.Image
)

// commitRoute serves an internal route: it decodes command C and
// commits it, answering the stored record.
func commitRoute[C any, P interface {
	*C
	state.Command
}](s *Server) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var c C
		if err := decodeJSON(w, r, api.MaxRequestBytes, &c); err != nil {
			return err
		}
		res, err := s.Commit(r.Context(), P(&c))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	}
}

// commitImage commits an UpsertImage or an ImageReplica: here when this
// manager leads, else through the leader's internal route. Both commands
// may be applied twice, so a lost answer is simply sent again, and an
// election waited out, until forwardFor has passed.
func (s *Server) commitImage(ctx context.Context, cmd state.Command) (*types.Image, error) {
	path, method := pathImageRecords, http.MethodPut
	if _, ok := cmd.(*state.ImageReplica); ok {
		path, method = pathImageReplicas, http.MethodPost
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(forwardFor)
	for {
		var again bool
		if s.raft.IsLeader() {
			var res any
			if res, err = s.Commit(ctx, cmd); err == nil {
				return res.(*types.Image), nil
			}
			again = errors.Is(err, raftnode.ErrNotLeader)
		} else {
			var target string
			if target, err = s.leaderClusterAddr(ctx); err == nil {
				var im *types.Image
				if im, again, err = s.sendToLeader(ctx, target, method, path, body); !again {
					return im, err
				}
			} else {
				again = true // an election under way, or won here meanwhile
			}
		}
		if !again {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the leader did not take the image record within %s: %w", forwardFor, err)
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

// sendToLeader sends one commit to the leader; again: it may be tried once
// more (the leader was unreachable or lost office).
func (s *Server) sendToLeader(ctx context.Context, target, method, path string, body []byte) (*types.Image, bool, error) {
	actx, cancel := context.WithTimeout(ctx, forwardAttempt)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, method, "https://"+target+path, bytes.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: s.managerTransport}).Do(req)
	if err != nil {
		return nil, true, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, api.MaxRequestBytes))
	switch {
	case resp.StatusCode == http.StatusOK:
		var im types.Image
		if err := json.Unmarshal(b, &im); err != nil {
			return nil, false, fmt.Errorf("the leader's answer to an image record: %w", err)
		}
		return &im, false, nil
	case leaderGone(resp.StatusCode):
		return nil, true, fmt.Errorf("the leader answered %d", resp.StatusCode)
	}
	var e api.ErrorBody
	_ = json.Unmarshal(b, &e)
	if resp.StatusCode == http.StatusNotFound {
		return nil, false, fmt.Errorf("%s: %w", e.Error, state.ErrNotFound)
	}
	return nil, false, &apiError{status: resp.StatusCode, msg: e.Error, field: e.Field}
}

// replicate runs on every manager until ctx ends: after every change of
// the image records or the managers, it fetches what it lacks. A failed
// image is tried again after a pause that grows to a minute; with nothing
// failing it looks again every recheckImages anyway, for a registry that
// lost blobs behind its back.
func (s *Server) replicate(ctx context.Context) {
	var idx uint64
	pause := time.Second
	for ctx.Err() == nil {
		wait := recheckImages
		if s.replicateOnce(ctx) {
			pause = time.Second
		} else {
			wait = pause
			pause = min(2*pause, time.Minute)
		}
		wctx, cancel := context.WithTimeout(ctx, wait+rand.N(wait/2+1))
		idx, _ = s.store.WaitForChange(wctx, []string{state.TableImages, state.TableCluster}, idx)
		cancel()
	}
}

// recheckImages is how often a manager with nothing to fetch checks that
// it still holds what it is recorded to.
var recheckImages = 5 * time.Minute

// replicateOnce brings every image to this manager; true when nothing is
// left to do.
func (s *Server) replicateOnce(ctx context.Context) bool {
	done := true
	for _, im := range s.store.View().Images() {
		if ctx.Err() != nil {
			return false
		}
		held, has := im.HasReplica(s.id), s.holds(ctx, im)
		switch {
		case held && has:
			continue
		case held:
			// Recorded as held but gone (a data directory restored without
			// its registry): drop the claim, then fetch it again.
			s.log.Warn("this manager's registry lost an image; fetching it again", "image", im.ID)
			if _, err := s.commitImage(ctx, &state.ImageReplica{ID: im.ID, ManagerID: s.id, Drop: true}); err != nil {
				done = false
				continue
			}
		}
		// Held but not recorded happens too: a pass that ran before this
		// manager saw its replica committed.
		if !has {
			if err := s.fetchImage(ctx, im); err != nil {
				if !errors.Is(err, context.Canceled) {
					s.log.Warn("could not replicate an image; will retry", "image", im.ID, "err", err)
				}
				done = false
				continue
			}
		}
		if _, err := s.commitImage(ctx, &state.ImageReplica{ID: im.ID, ManagerID: s.id}); err != nil && !errors.Is(err, state.ErrNotFound) {
			s.log.Warn("could not record this manager as an image's replica; will retry", "image", im.ID, "err", err)
			done = false
		}
	}
	return done
}

// holds tells whether this manager's registry has the image's manifest
// and every blob.
func (s *Server) holds(ctx context.Context, im *types.Image) bool {
	if ok, err := s.registry.HasManifest(ctx, im.Repo, im.Digest); err != nil || !ok {
		return false
	}
	for _, b := range im.Blobs {
		if ok, err := s.registry.HasBlob(ctx, im.Repo, b.Digest); err != nil || !ok {
			return false
		}
	}
	return true
}

// fetchImage copies an image's missing blobs and its manifest from the
// first manager in its Replicas that serves them.
func (s *Server) fetchImage(ctx context.Context, im *types.Image) error {
	cl := s.store.View().Cluster()
	if cl == nil {
		return errors.New("the cluster record is not there yet")
	}
	var errs []error
	for _, id := range shuffled(im.Replicas) {
		m := cl.Manager(id)
		if id == s.id || m == nil || m.ClusterAddr == "" {
			continue
		}
		err := s.fetchImageFrom(ctx, m.ClusterAddr, im)
		if err == nil {
			s.log.Info("replicated an image", "image", im.ID, "from", m.Name)
			return nil
		}
		errs = append(errs, fmt.Errorf("from %s: %w", m.Name, err))
	}
	if len(errs) == 0 {
		return fmt.Errorf("no other manager holds image %s", im.ID)
	}
	return errors.Join(errs...)
}

func shuffled(ids []string) []string {
	out := slices.Clone(ids)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (s *Server) fetchImageFrom(ctx context.Context, addr string, im *types.Image) error {
	for _, b := range im.Blobs {
		ok, err := s.registry.HasBlob(ctx, im.Repo, b.Digest)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		resp, err := s.registryGet(ctx, addr, "/v2/"+im.Repo+"/blobs/"+b.Digest, "")
		if err != nil {
			return err
		}
		err = s.registry.PutBlob(ctx, im.Repo, b.Digest, b.Size, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
	}
	resp, err := s.registryGet(ctx, addr, "/v2/"+im.Repo+"/manifests/"+im.Digest, im.MediaType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	payload, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	return s.registry.PutManifest(ctx, im.Repo, im.Digest, im.MediaType, payload)
}

// registryGet fetches path from another manager's registry with this
// manager's certificate.
func (s *Server) registryGet(ctx context.Context, addr, path, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := (&http.Client{Transport: s.managerTransport}).Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return resp, nil
}

// sleepCtx waits d, or less when ctx ends first (then false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
