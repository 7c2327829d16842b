package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
)

// startProfile writes a CPU profile of the whole process to the file
// BERTH_CPUPROFILE names, suffixed with the process ID (every berth
// process a benchmark starts inherits the variable: the server, and each
// CLI call), until the returned function is called. It is how one finds
// where a deploy's CPU goes in a real server. Unset, it does nothing.
//
// With BERTH_HEAPPROFILE set, each SIGUSR1 the process receives writes a
// heap profile (after a collection, so it shows what is live) to that
// name suffixed with the process ID: how one finds what a manager's
// memory per task is made of while it holds the tasks (at exit it holds
// none any more).
func startProfile() func() {
	watchHeapProfile(os.Getenv("BERTH_HEAPPROFILE"))
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

// watchHeapProfile writes a heap profile to path.PID on every SIGUSR1.
// The file appears whole (written aside, then renamed), so a benchmark
// that waits for it reads a complete profile.
func watchHeapProfile(path string) {
	if path == "" {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		for range sig {
			name := fmt.Sprintf("%s.%d", path, os.Getpid())
			if err := writeHeapProfile(name); err != nil {
				fmt.Fprintf(os.Stderr, "warning: BERTH_HEAPPROFILE: %v\n", err)
			}
		}
	}()
}

func writeHeapProfile(name string) error {
	runtime.GC()
	f, err := os.Create(name + ".tmp")
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(name+".tmp", name)
}
