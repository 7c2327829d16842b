package harness

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	e2e "github.com/berth-dev/berth/test/e2e/harness"
)

// killProcessesOf kills every process whose executable is bin: the tasks a
// killed agent leaves running.
func killProcessesOf(bin string) {
	for _, pid := range processesOf(bin) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// processesOf lists the live (not zombie) processes whose executable is bin.
func processesOf(bin string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && exe == bin && ProcessAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ProcessAlive reports whether pid names a live process (not a zombie).
func ProcessAlive(pid int) bool { return e2e.ProcessAlive(pid) }
