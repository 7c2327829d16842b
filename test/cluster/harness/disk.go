package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// SmallDisk mounts a tmpfs of sizeMiB as the data directory of the manager
// that will be named name ("m1" is the first one started), before it
// starts: a real small file system that fills up. Mounting needs root; a
// test run by another user is skipped with a message (CI runs as root).
// The mount goes when the test ends, lazily, after its processes.
func (c *Cluster) SmallDisk(tb testing.TB, name string, sizeMiB int) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("mounting a small tmpfs as a manager's data directory needs root; run as root to test full disks")
	}
	dir := c.dataDirOf(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dm,mode=0700", sizeMiB)); err != nil {
		tb.Fatalf("mount a %d MiB tmpfs on %s: %v", sizeMiB, dir, err)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// FillDisk writes a file in dir until its file system has no space left,
// and returns a func that deletes the file.
func FillDisk(tb testing.TB, dir string) (free func()) {
	tb.Helper()
	path := filepath.Join(dir, "harness-filler")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = 0xaa
	}
	for err == nil {
		_, err = f.Write(buf)
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		tb.Fatalf("filling %s stopped with %v, want no space left", dir, err)
	}
	return func() {
		tb.Helper()
		if err := os.Remove(path); err != nil {
			tb.Fatal(err)
		}
	}
}

// StartJoiningManager starts one more manager that joins via with token,
// and returns without waiting: for a manager expected to fail.
func (c *Cluster) StartJoiningManager(tb testing.TB, via *Manager, token string) *Manager {
	tb.Helper()
	m := c.newManager(tb, "--join", via.ClusterAddr, "--token", token)
	m.Start(tb)
	return m
}
