// Package registry is the Docker Registry HTTP API v2 that every manager
// embeds (issue 16): github.com/distribution/distribution/v3 as a library,
// its blobs on the local filesystem under one directory with a size limit
// of its own, so a full registry refuses pushes instead of filling the disk
// that Raft needs.
//
// The package decides nothing about who may do what: the caller (the
// server, which knows certificates and tokens) passes the Access of each
// request to Serve. Beside the HTTP API it gives the server what it needs to
// replicate images between managers (HasBlob, OpenBlob, PutBlob,
// GetManifest, PutManifest) and to collect garbage (Sweep).
package registry

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// DefaultMaxBytes is the default limit of a registry (--registry-max-size).
const DefaultMaxBytes int64 = 10 << 30

// Config configures one registry.
type Config struct {
	// Dir holds the registry's blobs and repositories (the manager's
	// <data-dir>/registry); it is made when missing.
	Dir string
	// MaxBytes bounds what Dir may hold; <= 0 takes DefaultMaxBytes.
	MaxBytes int64
	// Reserve is free space the registry leaves on Dir's filesystem, for
	// what shares it (the manager's Raft log); FreeSpace measures it
	// (nil: no disk check, the limit alone).
	Reserve   int64
	FreeSpace func(dir string) (free uint64, known bool, err error)
	// Logger receives the library's warnings and errors.
	Logger *slog.Logger
}

// Registry is one manager's registry.
type Registry struct {
	app    *handlers.App
	ns     distribution.Namespace
	driver storagedriver.StorageDriver
	dir    string
	max    int64
	log    *slog.Logger
	usage  usage // what the directory holds, for the limit (limit.go)
	// reserve and freeSpace: see Config.
	reserve   int64
	freeSpace func(string) (uint64, bool, error)
}

// Access is what a request may do, as the caller decided from its
// credential.
type Access int

const (
	// NoAccess: the caller has no cluster credential; every request gets
	// 401 with WWW-Authenticate.
	NoAccess Access = iota
	// Pull: GET and HEAD (agents).
	Pull
	// Push: pull and upload (admins, managers).
	Push
)

// New opens (or creates) the registry in cfg.Dir.
func New(ctx context.Context, cfg Config) (*Registry, error) {
	if cfg.Dir == "" {
		return nil, errors.New("registry: a directory is required")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the registry directory: %w", err)
	}
	quietLibraryLog(cfg.Logger)
	driver := newFSDriver(cfg.Dir) // fsdriver.go: why not the library's filesystem driver
	ns, err := storage.NewRegistry(ctx, driver, storage.EnableValidateImageIndexImagesExist)
	if err != nil {
		return nil, fmt.Errorf("open the registry in %s: %w", cfg.Dir, err)
	}
	app, err := newApp(ctx, cfg.Dir)
	if err != nil {
		return nil, err
	}
	return &Registry{app: app, ns: ns, driver: driver, dir: cfg.Dir, max: cfg.MaxBytes, log: cfg.Logger,
		reserve: cfg.Reserve, freeSpace: cfg.FreeSpace}, nil
}

// newApp builds the library's HTTP application; it panics on a bad
// configuration, which ours never is, but a panic must not kill a manager.
func newApp(ctx context.Context, dir string) (app *handlers.App, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("start the registry: %v", p)
		}
	}()
	// The upload state is signed with this secret; one manager takes a
	// whole push, so a per-process secret is enough.
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			fsDriverName: configuration.Parameters{"rootdirectory": dir},
			// Its purger would run in a goroutine of its own, where a panic
			// (it had some, on other drivers) kills the manager: Sweep
			// purges instead, under recover.
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
			// No blob descriptor cache: Sweep deletes behind the app's back.
		},
	}
	cfg.HTTP.Secret = string(secret)
	// Clients reach a manager through proxies (the CLI's loopback proxy,
	// an agent's pull-through endpoint): upload locations must not name
	// the host the manager saw.
	cfg.HTTP.RelativeURLs = true
	cfg.Log.AccessLog.Disabled = true
	return handlers.NewApp(ctx, cfg), nil
}

// Close releases the library's application.
func (r *Registry) Close() error { return r.app.Shutdown() }

// Dir is the registry's directory.
func (r *Registry) Dir() string { return r.dir }

// MaxBytes is the registry's size limit.
func (r *Registry) MaxBytes() int64 { return r.max }

// Serve answers one request of the registry API (paths under /v2/) with
// the access the caller granted.
func (r *Registry) Serve(w http.ResponseWriter, req *http.Request, a Access) {
	switch {
	case a == NoAccess:
		Unauthorized(w, "the cluster registry needs a cluster credential: an admin token or certificate to push, a node certificate to pull")
		return
	case req.Method == http.MethodGet || req.Method == http.MethodHead:
	case req.Method == http.MethodDelete && !(a == Push && strings.Contains(req.URL.Path, "/blobs/uploads/")):
		// A pusher may cancel its upload; nothing else is deleted.
		WriteError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "the cluster registry deletes nothing on request: images go when no app version uses them")
		return
	case a == Pull:
		WriteError(w, http.StatusForbidden, "DENIED", "this credential may pull from the cluster registry but not push to it")
		return
	}
	if isUpload(req) {
		r.serveUpload(w, req)
		return
	}
	r.app.ServeHTTP(w, req)
}

// Unauthorized answers 401 the way registry clients understand: a
// WWW-Authenticate challenge and the registry's JSON error.
func Unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="berth"`)
	WriteError(w, http.StatusUnauthorized, "UNAUTHORIZED", msg)
}

// Denied answers 403 DENIED with msg.
func Denied(w http.ResponseWriter, msg string) {
	WriteError(w, http.StatusForbidden, "DENIED", msg)
}

// WriteError answers with the registry's JSON error: one error of code
// (UNAUTHORIZED, DENIED, UNAVAILABLE, ...) and msg.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`+"\n", code, msg)
}

// isUpload tells the requests that write blob bytes.
func isUpload(req *http.Request) bool {
	return req.Method != http.MethodGet && req.Method != http.MethodHead &&
		strings.Contains(req.URL.Path, "/blobs/uploads")
}

// blobsDir is where the library keeps blob data (see its storage paths).
func (r *Registry) blobsDir() string {
	return filepath.Join(r.dir, "docker", "registry", "v2", "blobs")
}

// reposDir is where the library keeps repositories' links and uploads.
func (r *Registry) reposDir() string {
	return filepath.Join(r.dir, "docker", "registry", "v2", "repositories")
}
