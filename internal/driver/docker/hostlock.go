package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// hostLocks serializes network creation across processes on one host:
// engines before API 1.44 happily create two networks of one name, and
// two agents sharing an engine would otherwise race to do just that. It is
// an flock on a file per name, so a crashed holder releases it.
type hostLocks struct{ dir string }

func newHostLocks() hostLocks {
	for _, dir := range []string{"/run/berth/locks", filepath.Join(os.TempDir(), "berth-locks")} {
		if os.MkdirAll(dir, 0o700) == nil {
			return hostLocks{dir: dir}
		}
	}
	return hostLocks{} // no lock directory: the dedup after create still applies
}

// lock takes the lock for key, waiting until ctx is done.
func (h hostLocks) lock(ctx context.Context, key string) (func(), error) {
	if h.dir == "" {
		return func() {}, nil
	}
	name := strings.NewReplacer("/", "_", "\\", "_").Replace(key) + ".lock"
	f, err := os.OpenFile(filepath.Join(h.dir, name), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock for %s: %w", key, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the flock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", key, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
