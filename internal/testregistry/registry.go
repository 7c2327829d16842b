// Package testregistry makes Docker images in memory and serves them the
// way a registry serves pulls (the read half of the registry HTTP API v2),
// for tests of what pulls images: the agent's pull-through endpoint and the
// docker driver. It is a test helper; nothing in berth serves images with it.
package testregistry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Media types of a Docker image manifest (schema 2), its config and layers.
const (
	MediaManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaConfig   = "application/vnd.docker.container.image.v1+json"
	MediaLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// Image is a FROM-scratch image whose every layer holds one file. With a
// random file in it, no engine holds it before a test pulls it.
type Image struct {
	Manifest []byte
	// Digest is the manifest's digest: a reference pulls REPO@Digest.
	Digest string
	// ConfigDigest is the image ID the engine gives it.
	ConfigDigest string
	// Layers are the layer blobs' digests, in order.
	Layers []string
	// Blobs are the config and the layers by digest.
	Blobs map[string][]byte
}

// File is one file of an image, in a layer of its own.
type File struct {
	Name string
	Data []byte
}

// RandomFile is a file of n random bytes.
func RandomFile(name string, n int) File {
	data := make([]byte, n)
	_, _ = rand.Read(data)
	return File{Name: name, Data: data}
}

// NewImage makes an image of one layer per file, whose command is cmd.
func NewImage(cmd []string, files ...File) (*Image, error) {
	img := &Image{Blobs: map[string][]byte{}}
	type desc struct {
		MediaType string `json:"mediaType"`
		Size      int    `json:"size"`
		Digest    string `json:"digest"`
	}
	var layers []desc
	var diffIDs []string
	for _, f := range files {
		blob, diffID, err := layer(f)
		if err != nil {
			return nil, err
		}
		d := digestOf(blob)
		img.Blobs[d] = blob
		img.Layers = append(img.Layers, d)
		layers = append(layers, desc{MediaLayer, len(blob), d})
		diffIDs = append(diffIDs, diffID)
	}
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": time.Now().UTC().Format(time.RFC3339Nano),
		"config": map[string]any{"Cmd": cmd},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	if err != nil {
		return nil, err
	}
	img.ConfigDigest = digestOf(config)
	img.Blobs[img.ConfigDigest] = config
	img.Manifest, err = json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": MediaManifest,
		"config": desc{MediaConfig, len(config), img.ConfigDigest},
		"layers": layers,
	})
	if err != nil {
		return nil, err
	}
	img.Digest = digestOf(img.Manifest)
	return img, nil
}

// layer is a gzipped tar holding f, and the digest of the tar (its diff
// ID).
func layer(f File) (blob []byte, diffID string, err error) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	hdr := &tar.Header{Name: f.Name, Mode: 0o755, Size: int64(len(f.Data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, "", err
	}
	if _, err := tw.Write(f.Data); err != nil {
		return nil, "", err
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var gz bytes.Buffer
	// Tests' layers are random bytes or a binary: spare the time.
	zw, err := gzip.NewWriterLevel(&gz, gzip.NoCompression)
	if err != nil {
		return nil, "", err
	}
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), digestOf(tarBuf.Bytes()), nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Registry serves images by repository, for GET and HEAD. It can pretend a
// blob is missing, and records the requests it answered.
type Registry struct {
	// Admit, when set, vets every request; an error is answered 401.
	Admit func(r *http.Request) error

	mu       sync.Mutex
	repos    map[string]*Image
	missing  map[string]bool
	requests []string
}

// New makes an empty registry.
func New() *Registry {
	return &Registry{repos: map[string]*Image{}, missing: map[string]bool{}}
}

// Add serves img as repo (by its digest and as tag "latest").
func (g *Registry) Add(repo string, img *Image) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.repos[repo] = img
}

// Lose makes the registry answer 404 for the blob (or manifest) digest.
func (g *Registry) Lose(digest string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.missing[digest] = true
}

// Requests are the requests answered so far, as "METHOD PATH".
func (g *Registry) Requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.requests...)
}

func (g *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.requests = append(g.requests, r.Method+" "+r.URL.Path)
	g.mu.Unlock()
	if g.Admit != nil {
		if err := g.Admit(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			apiError(w, http.StatusUnauthorized, "UNAUTHORIZED", err.Error())
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		apiError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry only serves pulls")
		return
	}
	p := r.URL.Path
	if p == "/v2/" || p == "/v2" {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
		return
	}
	repo, kind, ref, ok := parse(p)
	if !ok {
		apiError(w, http.StatusNotFound, "NAME_UNKNOWN", "no such path")
		return
	}
	g.mu.Lock()
	img := g.repos[repo]
	g.mu.Unlock()
	if img == nil {
		apiError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository "+repo+" is not known")
		return
	}
	var body []byte
	var digest, mediaType string
	switch kind {
	case "manifests":
		if ref == img.Digest || ref == "latest" {
			body, digest, mediaType = img.Manifest, img.Digest, MediaManifest
		}
	case "blobs":
		body, digest, mediaType = img.Blobs[ref], ref, "application/octet-stream"
	}
	g.mu.Lock()
	lost := g.missing[digest]
	g.mu.Unlock()
	if body == nil || lost {
		code := "BLOB_UNKNOWN"
		if kind == "manifests" {
			code = "MANIFEST_UNKNOWN"
		}
		apiError(w, http.StatusNotFound, code, ref+" is not in "+repo)
		return
	}
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Etag", `"`+digest+`"`)
	// ServeContent answers Range requests, as the engine sends to resume.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// parse splits /v2/<repo>/<manifests|blobs>/<ref>.
func parse(p string) (repo, kind, ref string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return "", "", "", false
	}
	for _, k := range []string{"manifests", "blobs"} {
		if i := strings.LastIndex(rest, "/"+k+"/"); i > 0 {
			return rest[:i], k, rest[i+len(k)+2:], true
		}
	}
	return "", "", "", false
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}
