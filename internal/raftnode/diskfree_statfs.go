//go:build linux || darwin

package raftnode

import "syscall"

// freeBytes is the space an unprivileged writer may still use in the file
// system of dir; ok is false where it cannot be known.
func freeBytes(dir string) (free uint64, ok bool, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true, nil
}
