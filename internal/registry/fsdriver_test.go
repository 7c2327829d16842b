package registry

import (
	"context"
	"errors"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/testsuites"
)

// The library's own conformance suite for storage drivers, the one its
// filesystem driver passes.
func TestFSDriverSuite(t *testing.T) {
	root := t.TempDir()
	testsuites.Driver(t, func() (storagedriver.StorageDriver, error) { return newFSDriver(root), nil }, false)
}

// The checks the library's driver/base did before any call reached the
// disk (a path that is not a storage path, a negative offset), and one it
// did not: a "." or ".." component, which could leave the root.
func TestFSDriverRefusesBadPaths(t *testing.T) {
	ctx := context.Background()
	d := newFSDriver(t.TempDir())
	for _, p := range []string{"", "relative", "/a/../../etc/passwd", "/a//b", "/a/", "/a b", "/..", "/a/./b"} {
		var invalid storagedriver.InvalidPathError
		if _, err := d.GetContent(ctx, p); !errors.As(err, &invalid) {
			t.Errorf("GetContent(%q): %v, want InvalidPathError", p, err)
		}
		if err := d.PutContent(ctx, p, []byte("x")); !errors.As(err, &invalid) {
			t.Errorf("PutContent(%q): %v, want InvalidPathError", p, err)
		}
		if err := d.Move(ctx, "/ok", p); !errors.As(err, &invalid) {
			t.Errorf("Move(/ok, %q): %v, want InvalidPathError", p, err)
		}
		if err := d.Delete(ctx, p); !errors.As(err, &invalid) {
			t.Errorf("Delete(%q): %v, want InvalidPathError", p, err)
		}
	}
	var offset storagedriver.InvalidOffsetError
	if _, err := d.Reader(ctx, "/ok", -1); !errors.As(err, &offset) {
		t.Errorf("Reader(/ok, -1): %v, want InvalidOffsetError", err)
	}
	// The root may be listed and walked, not read.
	if _, err := d.List(ctx, "/"); err != nil && !errors.As(err, new(storagedriver.PathNotFoundError)) {
		t.Errorf("List(/): %v", err)
	}
	var notFound storagedriver.PathNotFoundError
	if _, err := d.Stat(ctx, "/missing"); !errors.As(err, &notFound) || notFound.DriverName != "filesystem" {
		t.Errorf("Stat(/missing): %#v, want PathNotFoundError of driver filesystem", err)
	}
}
