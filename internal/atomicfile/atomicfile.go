// Package atomicfile replaces a file so that a reader, or the machine
// after a crash, sees the old content or the new, never half of either,
// and never a moment with looser permissions than asked for. It imports
// nothing of berth's, so any package may use it.
//
// The caller creates the directory; Write puts its temporary file there
// (a rename is atomic only within one file system) and names it with a
// leading dot and a ".tmp" suffix, so a directory listing that skips dot
// files never sees it.
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
)

// Write writes data to a temporary file beside path with mode perm, syncs
// it and renames it over path. On error the temporary file is gone and
// path is as it was. The error is the os package's, which names the file.
func Write(path string, data []byte, perm os.FileMode) (err error) {
	// CreateTemp makes the file 0600, so it is never more open than perm
	// while it is written; the Chmod then sets perm exactly, umask aside.
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, os.Remove(tmp.Name()))
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if _, err := tmp.Write(data); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Sync(); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
