package registry

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
)

// The registry's storage driver. It does what the library's filesystem
// driver does (same layout on disk: every storage path under the root
// directory, so registries written before read the same), and the checks
// of the library's driver/base wrapper: path syntax, negative offsets,
// errors named after the driver, at most fsMaxCalls filesystem calls at
// once. It exists because driver/base also imports the library's tracing
// package, which links OpenTelemetry's SDKs and every OTLP exporter with
// gRPC: about 200 packages whose code and init every berth process paid
// for, agents too (one binary), in resident memory (docs/benchmarks.md
// "Idle footprint"). Nothing used them: the library's HTTP app never
// starts an exporter (only its registry command does), and the storage
// timers base records went to a Prometheus registry berth does not serve.

// fsDriverName is the name the library's factory knows the driver by, in
// newApp's configuration; a name of its own, so it never collides with
// the library's "filesystem" where a test links both.
const fsDriverName = "berth-filesystem"

// fsMaxCalls bounds concurrent filesystem calls as the library's
// regulator did (its default for the filesystem driver): each blocked
// call holds an OS thread.
const fsMaxCalls = 100

func init() {
	factory.Register(fsDriverName, fsDriverFactory{})
}

type fsDriverFactory struct{}

func (fsDriverFactory) Create(_ context.Context, params map[string]any) (storagedriver.StorageDriver, error) {
	root, ok := params["rootdirectory"].(string)
	if !ok || root == "" {
		return nil, fmt.Errorf("%s: rootdirectory: want a directory, have %#v", fsDriverName, params["rootdirectory"])
	}
	return newFSDriver(root), nil
}

// fsDriver checks and bounds each call, then hands it to fsStore.
type fsDriver struct {
	fs    *fsStore
	calls chan struct{} // a slot per call under way, fsMaxCalls of them
}

func newFSDriver(root string) *fsDriver {
	return &fsDriver{fs: &fsStore{root: root}, calls: make(chan struct{}, fsMaxCalls)}
}

var _ storagedriver.StorageDriver = (*fsDriver)(nil)

// Name is what errors say the driver is: "filesystem", as before.
func (d *fsDriver) Name() string { return "filesystem" }

func (d *fsDriver) acquire() func() {
	d.calls <- struct{}{}
	return func() { <-d.calls }
}

// validPath tells the paths the storage package may ask for; root (for
// Stat, List and Walk) is "/". The library's syntax admits "." and ".."
// as components, which would reach outside the root once joined to it;
// the storage package never makes one (names, tags and digests cannot
// be either), so they are refused here, which the library's base did not.
func validPath(path string, root bool) bool {
	if root && path == "/" {
		return true
	}
	if !storagedriver.PathRegexp.MatchString(path) {
		return false
	}
	for _, c := range strings.Split(path[1:], "/") {
		if c == "." || c == ".." {
			return false
		}
	}
	return true
}

func (d *fsDriver) invalid(path string) error {
	return storagedriver.InvalidPathError{Path: path, DriverName: d.Name()}
}

// named names the driver in e the way the library's base did: its own
// error types keep their type (the storage package switches on them),
// anything else becomes a storagedriver.Error.
func (d *fsDriver) named(e error) error {
	switch err := e.(type) {
	case nil:
		return nil
	case storagedriver.ErrUnsupportedMethod:
		err.DriverName = d.Name()
		return err
	case storagedriver.PathNotFoundError:
		err.DriverName = d.Name()
		return err
	case storagedriver.InvalidPathError:
		err.DriverName = d.Name()
		return err
	case storagedriver.InvalidOffsetError:
		err.DriverName = d.Name()
		return err
	default:
		return storagedriver.Error{DriverName: d.Name(), Detail: e}
	}
}

func (d *fsDriver) GetContent(ctx context.Context, path string) ([]byte, error) {
	if !validPath(path, false) {
		return nil, d.invalid(path)
	}
	defer d.acquire()()
	b, err := d.fs.GetContent(ctx, path)
	return b, d.named(err)
}

func (d *fsDriver) PutContent(ctx context.Context, path string, content []byte) error {
	if !validPath(path, false) {
		return d.invalid(path)
	}
	defer d.acquire()()
	return d.named(d.fs.PutContent(ctx, path, content))
}

func (d *fsDriver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, storagedriver.InvalidOffsetError{Path: path, Offset: offset, DriverName: d.Name()}
	}
	if !validPath(path, false) {
		return nil, d.invalid(path)
	}
	defer d.acquire()()
	rc, err := d.fs.Reader(ctx, path, offset)
	return rc, d.named(err)
}

func (d *fsDriver) Writer(ctx context.Context, path string, append bool) (storagedriver.FileWriter, error) {
	if !validPath(path, false) {
		return nil, d.invalid(path)
	}
	defer d.acquire()()
	w, err := d.fs.Writer(ctx, path, append)
	return w, d.named(err)
}

func (d *fsDriver) Stat(ctx context.Context, path string) (storagedriver.FileInfo, error) {
	if !validPath(path, true) {
		return nil, d.invalid(path)
	}
	defer d.acquire()()
	fi, err := d.fs.Stat(ctx, path)
	return fi, d.named(err)
}

func (d *fsDriver) List(ctx context.Context, path string) ([]string, error) {
	if !validPath(path, true) {
		return nil, d.invalid(path)
	}
	defer d.acquire()()
	names, err := d.fs.List(ctx, path)
	return names, d.named(err)
}

func (d *fsDriver) Move(ctx context.Context, from, to string) error {
	if !validPath(from, false) {
		return d.invalid(from)
	}
	if !validPath(to, false) {
		return d.invalid(to)
	}
	defer d.acquire()()
	return d.named(d.fs.Move(ctx, from, to))
}

func (d *fsDriver) Delete(ctx context.Context, path string) error {
	if !validPath(path, false) {
		return d.invalid(path)
	}
	defer d.acquire()()
	return d.named(d.fs.Delete(ctx, path))
}

// RedirectURL is always "": blobs are served by the manager itself.
func (d *fsDriver) RedirectURL(_ *http.Request, path string) (string, error) {
	if !validPath(path, false) {
		return "", d.invalid(path)
	}
	return "", nil
}

// Walk holds one slot for the whole walk, as the library's regulator did;
// the walk lists through fsStore, whose calls take no slot, so a walk
// never waits on itself.
func (d *fsDriver) Walk(ctx context.Context, path string, f storagedriver.WalkFn, options ...func(*storagedriver.WalkOptions)) error {
	if !validPath(path, true) {
		return d.invalid(path)
	}
	defer d.acquire()()
	return d.named(storagedriver.WalkFallback(ctx, d.fs, path, f, options...))
}

// fsStore is the filesystem itself: storage paths are joined to root.
// Its methods trust their paths (fsDriver checked them).
type fsStore struct {
	root string
}

var _ storagedriver.StorageDriver = (*fsStore)(nil)

func (s *fsStore) Name() string { return "filesystem" }

func (s *fsStore) full(path string) string { return filepath.Join(s.root, path) }

func (s *fsStore) GetContent(ctx context.Context, path string) ([]byte, error) {
	rc, err := s.Reader(ctx, path, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// PutContent writes content beside path, syncs it, and renames it over
// path: a reader sees the old content or the new, never part of it.
func (s *fsStore) PutContent(ctx context.Context, path string, content []byte) error {
	var suffix [16]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return fmt.Errorf("name a temporary file: %w", err)
	}
	tmp := path + "." + hex.EncodeToString(suffix[:]) + ".tmp"
	w, err := s.Writer(ctx, tmp, false)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := w.Write(content); err != nil {
		return errors.Join(err, w.Cancel(ctx))
	}
	if err := w.Commit(ctx); err != nil {
		return errors.Join(err, w.Cancel(ctx))
	}
	if err := s.Move(ctx, tmp, path); err != nil {
		return errors.Join(err, s.Delete(ctx, tmp))
	}
	return syncDir(filepath.Dir(s.full(path)))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) (err error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func (s *fsStore) Reader(_ context.Context, path string, offset int64) (io.ReadCloser, error) {
	f, err := os.Open(s.full(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, storagedriver.PathNotFoundError{Path: path}
	}
	if err != nil {
		return nil, err
	}
	pos, err := f.Seek(offset, io.SeekStart)
	if err == nil && pos < offset {
		err = storagedriver.InvalidOffsetError{Path: path, Offset: offset}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (s *fsStore) Writer(_ context.Context, path string, append bool) (storagedriver.FileWriter, error) {
	full := s.full(path)
	if err := os.MkdirAll(filepath.Dir(full), 0o777); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	var size int64
	if append {
		size, err = f.Seek(0, io.SeekEnd)
	} else {
		err = f.Truncate(0)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fsWriter{f: f, bw: bufio.NewWriter(f), size: size}, nil
}

func (s *fsStore) Stat(_ context.Context, path string) (storagedriver.FileInfo, error) {
	fi, err := os.Stat(s.full(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, storagedriver.PathNotFoundError{Path: path}
	}
	if err != nil {
		return nil, err
	}
	return fsFileInfo{FileInfo: fi, path: path}, nil
}

// List names the direct children of path, as storage paths.
func (s *fsStore) List(_ context.Context, path string) ([]string, error) {
	dir, err := os.Open(s.full(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, storagedriver.PathNotFoundError{Path: path}
	}
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	names, err := dir.Readdirnames(0)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(names))
	for _, n := range names {
		keys = append(keys, filepath.Join(path, n))
	}
	return keys, nil
}

func (s *fsStore) Move(_ context.Context, from, to string) error {
	src, dst := s.full(from), s.full(to)
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		return storagedriver.PathNotFoundError{Path: from}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
		return err
	}
	return os.Rename(src, dst)
}

// Delete removes path and everything under it.
func (s *fsStore) Delete(_ context.Context, path string) error {
	full := s.full(path)
	if _, err := os.Stat(full); errors.Is(err, os.ErrNotExist) {
		return storagedriver.PathNotFoundError{Path: path}
	} else if err != nil {
		return err
	}
	return os.RemoveAll(full)
}

func (s *fsStore) RedirectURL(*http.Request, string) (string, error) { return "", nil }

func (s *fsStore) Walk(ctx context.Context, path string, f storagedriver.WalkFn, options ...func(*storagedriver.WalkOptions)) error {
	return storagedriver.WalkFallback(ctx, s, path, f, options...)
}

type fsFileInfo struct {
	os.FileInfo
	path string
}

// Path is the storage path, not the one on disk.
func (fi fsFileInfo) Path() string { return fi.path }

// Size is 0 for a directory, as the storage package expects.
func (fi fsFileInfo) Size() int64 {
	if fi.IsDir() {
		return 0
	}
	return fi.FileInfo.Size()
}

// fsWriter buffers writes to f; Commit flushes and syncs them, Cancel
// removes the file.
type fsWriter struct {
	f                            *os.File
	bw                           *bufio.Writer
	size                         int64
	closed, committed, cancelled bool
}

func (w *fsWriter) state() error {
	switch {
	case w.closed:
		return errors.New("already closed")
	case w.committed:
		return errors.New("already committed")
	case w.cancelled:
		return errors.New("already cancelled")
	}
	return nil
}

func (w *fsWriter) Write(p []byte) (int, error) {
	if err := w.state(); err != nil {
		return 0, err
	}
	n, err := w.bw.Write(p)
	w.size += int64(n)
	return n, err
}

func (w *fsWriter) Size() int64 { return w.size }

// Close flushes and syncs what was written (a resumable upload continues
// from it) unless Commit already did.
func (w *fsWriter) Close() (err error) {
	if w.closed {
		return errors.New("already closed")
	}
	w.closed = true
	defer func() { err = errors.Join(err, w.f.Close()) }()
	if w.committed {
		return nil
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	return w.f.Sync()
}

func (w *fsWriter) Cancel(context.Context) error {
	if w.closed {
		return errors.New("already closed")
	}
	w.cancelled, w.closed = true, true
	_ = w.f.Close()
	return os.Remove(w.f.Name())
}

func (w *fsWriter) Commit(context.Context) error {
	if err := w.state(); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	w.committed = true
	return nil
}
