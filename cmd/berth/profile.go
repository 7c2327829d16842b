package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile of the whole process to the file
// BERTH_CPUPROFILE names, suffixed with the process ID (every berth
// process a benchmark starts inherits the variable: the server, and each
// CLI call), until the returned function is called. It is how one finds
// where a deploy's CPU goes in a real server. Unset, it does nothing.
func startProfile() func() {
	path := os.Getenv("BERTH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "warning: BERTH_CPUPROFILE: %v; no profile is written\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "warning: BERTH_CPUPROFILE: %v; no profile is written\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
