//go:build unix

package raftnode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// dirLock keeps a second process off a Raft directory. Without it the
// second process would hang forever on the WAL's bolt lock, with no message.
type dirLock struct{ f *os.File }

func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open raft lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("raft data in %s is in use by another berth process; stop it or use another data directory", dir)
		}
		return nil, fmt.Errorf("lock raft data in %s: %w", dir, err)
	}
	return &dirLock{f: f}, nil
}

// unlock releases the lock; closing the file drops the flock.
func (l *dirLock) unlock() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
