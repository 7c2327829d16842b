package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/berth-dev/berth/internal/imagepush"
)

// OpenRegistry hands out the fake's pusher, or its openErr.
func (f *fakeImages) OpenRegistry(_ context.Context, target string, rt http.RoundTripper) (registryPusher, error) {
	if f.pusher.openErr != nil {
		return nil, f.pusher.openErr
	}
	f.pusher.have, f.pusher.target = f.have, target
	return &f.pusher, nil
}

// fakePusher "pushes" an image of two layers; the manifest digest follows
// from the image ID and the repository.
type fakePusher struct {
	have    map[string]string
	target  string
	openErr error
	pushErr error
	pushes  []string // "localRef -> repo"
}

func (p *fakePusher) Push(_ context.Context, localRef, repo string, progress io.Writer) (imagepush.Result, error) {
	if p.pushErr != nil {
		return imagepush.Result{}, p.pushErr
	}
	p.pushes = append(p.pushes, localRef+" -> "+repo)
	fmt.Fprintf(progress, "layer aaa  pushed\nlayer bbb  skipped (the cluster registry has it)\n")
	return imagepush.Result{Manifest: fakeManifest(p.have[localRef], repo), Config: p.have[localRef], Pushed: 1, Skipped: 1}, nil
}

func (p *fakePusher) Close() error { return nil }

func fakeManifest(id, repo string) string {
	sum := sha256.Sum256([]byte(id + repo))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// fakeImageRecords serves PUT /v1/images and GET /v1/images/{digest}: a
// new record has startReplicas managers, and gains one on every GET up to
// maxReplicas.
type fakeImageRecords struct {
	mu            sync.Mutex
	puts          []imagePut
	replicas      map[string]int // "repo@digest" -> managers holding it
	startReplicas int
	maxReplicas   int
	gets          int
	refuse        string // PUT answers 400 with this
}

func newFakeImageRecords() *fakeImageRecords {
	return &fakeImageRecords{replicas: map[string]int{}, startReplicas: 1, maxReplicas: 1}
}

func (r *fakeImageRecords) register(mux *http.ServeMux, f *fakeManager) {
	mux.HandleFunc("PUT /v1/images", func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		var in imagePut
		if err := json.NewDecoder(req.Body).Decode(&in); err != nil {
			f.fail(w, 400, err.Error())
			return
		}
		if r.refuse != "" {
			f.fail(w, 400, r.refuse)
			return
		}
		r.puts = append(r.puts, in)
		ref := in.Repo + "@" + in.Digest
		r.replicas[ref] = max(r.replicas[ref], r.startReplicas)
		f.reply(w, 200, r.record(ref))
	})
	mux.HandleFunc("GET /v1/images/{digest}", func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.gets++
		ref := req.URL.Query().Get("repo") + "@" + req.PathValue("digest")
		if _, ok := r.replicas[ref]; !ok {
			f.fail(w, 404, "no image "+ref)
			return
		}
		r.replicas[ref] = min(r.replicas[ref]+1, r.maxReplicas)
		f.reply(w, 200, r.record(ref))
	})
}

func (r *fakeImageRecords) record(ref string) map[string]any {
	ids := make([]string, r.replicas[ref])
	for i := range ids {
		ids[i] = fmt.Sprintf("manager%d", i+1)
	}
	return map[string]any{"ref": ref, "replicas": ids}
}
