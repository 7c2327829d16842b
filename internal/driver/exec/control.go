package execdriver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/driver"
)

var _ driver.Control = (*Driver)(nil)

// Kill signals the task's process group once; the exit it causes is
// reported as any other, and the restart policy applies.
func (d *Driver) Kill(_ context.Context, taskID, signal string) error {
	if signal == "" {
		signal = "SIGKILL" // as docker kill
	}
	sig, err := parseSignal(signal)
	if err != nil {
		return fmt.Errorf("kill task %s: %w", taskID, err)
	}
	return d.signalLive(taskID, "kill", sig)
}

// Pause stops the task's process group with SIGSTOP: a host process has no
// freezer cgroup of berth's, and SIGSTOP cannot be caught, so the effect is
// the engine's pause. A process that was itself sent SIGCONT by someone
// else runs again; the engine's freezer would hold it.
func (d *Driver) Pause(_ context.Context, taskID string) error {
	return d.signalLive(taskID, "pause", syscall.SIGSTOP)
}

// Unpause continues the process group with SIGCONT.
func (d *Driver) Unpause(_ context.Context, taskID string) error {
	return d.signalLive(taskID, "unpause", syscall.SIGCONT)
}

func (d *Driver) signalLive(taskID, what string, sig syscall.Signal) error {
	t, err := d.running(taskID)
	if err != nil {
		return fmt.Errorf("%s task %s: %w", what, taskID, err)
	}
	if err := d.signal(t, sig); err != nil {
		return fmt.Errorf("%s task %s: %w", what, taskID, err)
	}
	return nil
}

// running is the task, if its process still runs.
func (d *Driver) running(taskID string) (*task, error) {
	t, err := d.task(taskID)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	pid, start, exited := t.rec.PID, t.rec.ProcStart, t.rec.Exited
	t.mu.Unlock()
	if exited || !alive(pid, start) {
		return nil, driver.ErrNotRunning
	}
	return t, nil
}

// Top lists the processes of the task's process group (the process berth
// started and what it forked, unless they left the group), read from /proc
// as ps would show them.
func (d *Driver) Top(_ context.Context, taskID string) (*driver.Processes, error) {
	t, err := d.running(taskID)
	if err != nil {
		return nil, fmt.Errorf("list the processes of task %s: %w", taskID, err)
	}
	t.mu.Lock()
	pgid := t.rec.PID
	t.mu.Unlock()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list the processes of task %s: %w", taskID, err)
	}
	out := &driver.Processes{Titles: []string{"UID", "PID", "PPID", "STAT", "CMD"}}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok := readProc(pid)
		if ok && p.pgrp == pgid {
			out.Rows = append(out.Rows, []string{p.uid, strconv.Itoa(pid), strconv.Itoa(p.ppid), p.state, p.cmd})
		}
	}
	return out, nil
}

// proc is what Top shows of one process.
type proc struct {
	state, uid, cmd string
	ppid, pgrp      int
}

// readProc reads a process from /proc; a process gone meanwhile is skipped.
func readProc(pid int) (proc, bool) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	name, f, err := procStat(pid) // proc.go
	if err != nil || len(f) < 3 { // state, ppid, pgrp, ...
		return proc{}, false
	}
	p := proc{state: f[0], cmd: "[" + name + "]"}
	p.ppid, _ = strconv.Atoi(f[1])
	p.pgrp, _ = strconv.Atoi(f[2])
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && len(b) > 0 {
		p.cmd = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				if fs := strings.Fields(v); len(fs) > 0 {
					p.uid = fs[0]
				}
			}
		}
	}
	return p, true
}
