package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// Image records: what the cluster registry holds (types.Image). The CLI
// pushes an image to the registry of the manager it talks to, then asks
// that same manager to record it (PUT /v1/images): only that manager is
// sure to hold the blobs, so it reads its own registry and commits the
// record through the leader (replicate.go), instead of forwarding the
// request as other writes are.

// maxImages bounds the records (types.MaxImages); tests lower it.
var maxImages = types.MaxImages

func (s *Server) putImage(w http.ResponseWriter, r *http.Request) error {
	var in api.ImagePut
	if err := decodeJSON(w, r, api.MaxRequestBytes, &in); err != nil {
		return err
	}
	repo, err := checkImagePut(&in)
	if err != nil {
		return err
	}
	ctx := r.Context()
	mt, payload, err := s.registry.GetManifest(ctx, repo, in.Digest)
	if err != nil {
		return badRequest("digest", "this manager's registry holds no manifest %s in %s; push the image to this manager (the one at this address) first", in.Digest, repo)
	}
	m, err := registry.ParseManifest(mt, payload)
	if err != nil {
		return badRequest("digest", "%s", err.Error())
	}
	if len(m.Blobs()) > types.MaxImageBlobs {
		return badRequest("digest", "the image has %d blobs; the cluster registry records at most %d", len(m.Blobs()), types.MaxImageBlobs)
	}
	im := &types.Image{Digest: in.Digest, Repo: repo, App: in.App, Service: in.Service, MediaType: m.MediaType,
		Config: m.Config.Digest, Size: int64(len(payload)), PushedAt: s.clock.Now().UTC(), Replicas: []string{s.id}}
	for _, b := range m.Blobs() {
		ok, err := s.registry.HasBlob(ctx, repo, b.Digest)
		if err != nil {
			return err
		}
		if !ok {
			return badRequest("digest", "the manifest references blob %s, which this manager's registry lacks; push the image again", b.Digest)
		}
		im.Blobs = append(im.Blobs, types.ImageBlob{Digest: b.Digest, Size: b.Size, MediaType: b.MediaType})
		im.Size += b.Size
	}
	if v := s.store.View(); v.Image(types.ImageRef(repo, in.Digest)) == nil && len(v.Images()) >= maxImages {
		return &apiError{status: http.StatusConflict, msg: fmt.Sprintf("the cluster records at most %d images; remove old apps first (berth down)", maxImages)}
	}
	res, err := s.commitImage(ctx, &state.UpsertImage{Image: im})
	if err != nil {
		return err
	}
	// Committed through the leader: the client's next read here must
	// see it (read your writes), so wait until this manager applied it.
	wctx, cancel := context.WithTimeout(ctx, forwardFor)
	_, _ = s.store.WaitForChange(wctx, []string{state.TableImages}, res.ModifyIndex-1)
	cancel()
	v := s.store.View()
	writeJSON(w, http.StatusOK, newImageView(v).out(res))
	return nil
}

// checkImagePut validates a put and returns the repository it names.
func checkImagePut(in *api.ImagePut) (string, error) {
	for _, f := range []struct{ name, v string }{{"app", in.App}, {"service", in.Service}} {
		switch {
		case f.v == "":
			return "", badRequest(f.name, "is required")
		case len(f.v) > api.MaxImageNameBytes:
			return "", badRequest(f.name, "longer than %d bytes", api.MaxImageNameBytes)
		}
		if err := types.CheckImageRepoPart(f.v); err != nil {
			return "", badRequest(f.name, "%s", err.Error())
		}
	}
	repo, err := types.ImageRepo(in.App, in.Service)
	if err != nil {
		return "", badRequest("app", "%s", err.Error())
	}
	if in.Repo != "" && in.Repo != repo {
		return "", badRequest("repo", "must be %q, the app and service, not %q", repo, in.Repo)
	}
	if !types.ValidDigest(in.Digest) {
		return "", badRequest("digest", "must be a manifest digest such as sha256:<64 hex digits>, not %q", in.Digest)
	}
	return repo, nil
}

// imageTables are those an image's answer reads: a blocking query on an
// image wakes when its replicas, users or the managers change.
var imageTables = []string{state.TableImages, state.TableApps, state.TableTasks, state.TableCluster}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) error {
	idx, err := s.block(r, imageTables...)
	if err != nil {
		return err
	}
	setIndex(w, idx)
	v := s.store.View()
	iv := newImageView(v)
	ims := v.Images()
	out := make([]api.Image, 0, len(ims))
	for _, im := range ims {
		out = append(out, iv.out(im))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getImage(w http.ResponseWriter, r *http.Request) error {
	dgst := r.PathValue("digest")
	if !types.ValidDigest(dgst) {
		return badRequest("digest", "must be a manifest digest such as sha256:<64 hex digits>, not %q", dgst)
	}
	idx, err := s.block(r, imageTables...)
	if err != nil {
		return err
	}
	setIndex(w, idx)
	v := s.store.View()
	var im *types.Image
	if repo := r.URL.Query().Get("repo"); repo != "" {
		im = v.Image(types.ImageRef(repo, dgst))
	} else {
		// The least replicated: what a client waiting for replicas wants.
		for _, c := range v.ImagesByDigest(dgst) {
			if im == nil || len(c.Replicas) < len(im.Replicas) {
				im = c
			}
		}
	}
	if im == nil {
		return notFound("the cluster registry has no image %s", dgst)
	}
	writeJSON(w, http.StatusOK, newImageView(v).out(im))
	return nil
}

// imageView is what an image's answer needs besides its record: the
// services whose current spec runs it and the nodes of their current
// tasks (by image ref), and the managers of the cluster now.
type imageView struct {
	users    map[string]imageUse
	managers map[string]bool
}

type imageUse struct{ services, nodes []string }

func newImageView(v *state.View) imageView {
	iv := imageView{users: map[string]imageUse{}, managers: map[string]bool{}}
	if cl := v.Cluster(); cl != nil {
		for _, m := range cl.Managers {
			iv.managers[m.ID] = true
		}
	}
	for _, app := range v.Apps() {
		for _, svc := range app.Services {
			if svc.ClusterImage == "" {
				continue
			}
			u := iv.users[svc.ClusterImage]
			u.services = append(u.services, types.ServiceID(app.Name, svc.Name))
			for _, t := range v.Tasks(state.TaskFilter{App: app.Name, Service: svc.Name}) {
				if t.NodeID == "" || t.State.Terminal() || t.ServiceVersion != svc.Version {
					continue
				}
				name := t.NodeID
				if n := v.Node(t.NodeID); n != nil && n.Name != "" {
					name = n.Name
				}
				if !slices.Contains(u.nodes, name) {
					u.nodes = append(u.nodes, name)
				}
			}
			iv.users[svc.ClusterImage] = u
		}
	}
	return iv
}

// out is the record on the wire. Its replicas are those of managers still
// in the cluster: a removed manager's copy serves no one.
func (iv imageView) out(im *types.Image) api.Image {
	o := api.Image{Ref: im.ID, Digest: im.Digest, Repo: im.Repo, App: im.App, Service: im.Service,
		MediaType: im.MediaType, Config: im.Config, Size: im.Size, PushedAt: im.PushedAt, Replicas: []string{}}
	for _, id := range im.Replicas {
		if iv.managers[id] {
			o.Replicas = append(o.Replicas, id)
		}
	}
	for _, b := range im.Blobs {
		o.Blobs = append(o.Blobs, api.ImageBlob{Digest: b.Digest, Size: b.Size, MediaType: b.MediaType})
	}
	u := iv.users[im.ID]
	o.Services = slices.Sorted(slices.Values(u.services))
	o.Nodes = slices.Sorted(slices.Values(u.nodes))
	return o
}
