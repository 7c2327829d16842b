package registry

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"

	units "github.com/docker/go-units"
)

// The size limit. The registry's usage is what its directory holds (blobs,
// links, partial uploads). It is measured by walking the directory when an
// upload starts and none is under way; while uploads run, every byte they
// read is added to it, so parallel uploads (Docker pushes layers three at a
// time) share one count and cannot each take the room that is left. Bytes
// of an upload that failed stay counted until the next walk: the count
// errs on the side of refusing.

// ErrFull is wrapped by the errors of writes the size limit refused.
var ErrFull = errors.New("the cluster registry is full")

type usage struct {
	mu     sync.Mutex
	active int
	used   int64
	// sinceDisk counts the bytes taken since the disk's free space was
	// last read (see diskCheckEvery).
	sinceDisk int64
	free      int64 // the last reading
	checked   bool
}

// diskCheckEvery spaces the reads of the disk's free space during uploads:
// the reserve may be overrun by at most this much.
const diskCheckEvery = 4 << 20

// beginUpload counts an upload in, measuring the directory when it is the
// only one.
func (r *Registry) beginUpload() error {
	r.usage.mu.Lock()
	defer r.usage.mu.Unlock()
	if r.usage.active == 0 {
		used, err := dirSize(r.dir)
		if err != nil {
			return fmt.Errorf("measure the registry: %w", err)
		}
		r.usage.used = used
	}
	r.usage.active++
	r.usage.checked = false
	return nil
}

func (r *Registry) endUpload() {
	r.usage.mu.Lock()
	r.usage.active--
	r.usage.mu.Unlock()
}

// take reserves n more bytes, or says how full the registry is.
func (r *Registry) take(n int64) error {
	r.usage.mu.Lock()
	defer r.usage.mu.Unlock()
	if r.usage.used+n > r.max {
		return r.fullError(r.usage.used)
	}
	if err := r.checkDisk(n); err != nil {
		return err
	}
	r.usage.used += n
	return nil
}

// checkDisk refuses n more bytes when they would eat into the reserve of
// the registry's filesystem. It reads the free space once per
// diskCheckEvery bytes and, in between, counts what it took off the last
// reading. Called with usage.mu held.
func (r *Registry) checkDisk(n int64) error {
	if r.freeSpace == nil {
		return nil
	}
	if !r.usage.checked || r.usage.sinceDisk+n >= diskCheckEvery {
		free, known, err := r.freeSpace(r.dir)
		if err != nil || !known {
			return nil // the limit still holds; a disk we cannot read is the disk check's to report
		}
		r.usage.checked, r.usage.sinceDisk, r.usage.free = true, 0, int64(free)
	}
	if left := r.usage.free - r.usage.sinceDisk - n; left < r.reserve {
		return fmt.Errorf("%w: its disk has %s free and keeps %s for the manager's Raft log: free space on the disk of %s",
			ErrFull, FormatSize(r.usage.free-r.usage.sinceDisk), FormatSize(r.reserve), r.dir)
	}
	r.usage.sinceDisk += n
	return nil
}

func (r *Registry) fullError(used int64) error {
	return fmt.Errorf("%w (%s of %s used): remove old apps or raise --registry-max-size", ErrFull, FormatSize(used), FormatSize(r.max))
}

// Usage measures what the registry's directory holds now.
func (r *Registry) Usage() (int64, error) { return dirSize(r.dir) }

// FormatSize writes a byte count as people read it ("1.5GiB").
func FormatSize(n int64) string { return units.BytesSize(float64(n)) }

// ParseSize reads a size such as "10GiB", "500m" or "1073741824".
func ParseSize(s string) (int64, error) { return units.RAMInBytes(s) }

func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			// A partial upload or a blob may go while we walk.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total, err
}

// limitedReader reads an upload's body, taking room for every byte; past
// the limit it fails and remembers why.
type limitedReader struct {
	r       *Registry
	body    io.ReadCloser
	tripped atomic.Pointer[error]
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.body.Read(p)
	if n > 0 {
		if terr := l.r.take(int64(n)); terr != nil {
			l.tripped.Store(&terr)
			return 0, terr
		}
	}
	return n, err
}

func (l *limitedReader) Close() error { return l.body.Close() }

// serveUpload runs an upload request through the library with its body
// counted against the limit. When the limit tripped, the library answers
// with an error of its own (500 or 400); the client gets DENIED with the
// sentence that says what to do instead.
func (r *Registry) serveUpload(w http.ResponseWriter, req *http.Request) {
	if err := r.beginUpload(); err != nil {
		r.log.Error("cluster registry: cannot measure its directory", "err", err)
		WriteError(w, http.StatusInternalServerError, "UNKNOWN", "the cluster registry cannot measure its directory; see the manager's log")
		return
	}
	defer r.endUpload()
	if err := r.take(0); err != nil {
		Denied(w, err.Error())
		return
	}
	lr := &limitedReader{r: r, body: req.Body}
	req.Body = lr
	r.app.ServeHTTP(&deniedWriter{ResponseWriter: w, lr: lr}, req)
}

// deniedWriter replaces the library's answer to an upload the limit
// stopped.
type deniedWriter struct {
	http.ResponseWriter
	lr       *limitedReader
	replaced bool
}

func (d *deniedWriter) WriteHeader(code int) {
	if e := d.lr.tripped.Load(); e != nil && code >= 400 {
		d.replaced = true
		d.ResponseWriter.Header().Del("Content-Length")
		Denied(d.ResponseWriter, (*e).Error())
		return
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *deniedWriter) Write(p []byte) (int, error) {
	if d.replaced {
		return len(p), nil
	}
	return d.ResponseWriter.Write(p)
}
