// Package supervise keeps one command running: berth's own small process
// supervisor for the hosts the machine drivers make (where no systemd runs
// for them). It restarts the command when it dies, with a backoff, stops it
// on SIGTERM, and keeps a pidfile and a log file.
//
// The supervisor runs as `berth machine-supervise --pidfile F --log F --
// CMD...`, started by Spawn in a session of its own so that it outlives the
// CLI that made the host.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options are what the supervisor keeps running.
type Options struct {
	Pidfile string   // the supervisor's pid; the command's is in Pidfile+".child"
	Log     string   // the command's stdout and stderr, and the supervisor's own lines (appended)
	Args    []string // the command and its arguments
	// StopTimeout is how long a stopping command has after SIGTERM before
	// SIGKILL (dockerd stops its containers first). Default 20 s.
	StopTimeout time.Duration
	// ClearPidfiles are pidfiles the command's own children write (dockerd's
	// containerd): before each start the supervisor waits for the process
	// named in each to be gone (killing it after a few seconds) and deletes
	// the file, so a restarted command never waits on a dead one's child.
	ClearPidfiles []string
	// MaxLog bounds the log file: past it, the log moves to Log+".1"
	// (replacing the one there) and starts again. Default 16 MiB.
	MaxLog int64
}

// Backoff bounds: a command that dies at once is restarted after
// minBackoff, doubling up to maxBackoff; one that ran for stableAfter
// starts again from minBackoff.
const (
	minBackoff  = 200 * time.Millisecond
	maxBackoff  = 10 * time.Second
	stableAfter = 30 * time.Second
)

// ChildPidfile is where the supervisor of pidfile writes its command's pid.
func ChildPidfile(pidfile string) string { return pidfile + ".child" }

// Run supervises o.Args until SIGTERM or SIGINT (or ctx ends), then stops
// the command and removes the pidfiles.
func Run(ctx context.Context, o Options) error {
	if len(o.Args) == 0 {
		return errors.New("no command to supervise: give it after --")
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 20 * time.Second
	}
	logf, err := openLog(o.Log, o.MaxLog)
	if err != nil {
		return fmt.Errorf("open the log file: %w", err)
	}
	defer logf.Close()
	if err := writePid(o.Pidfile, os.Getpid()); err != nil {
		return err
	}
	defer os.Remove(o.Pidfile)
	defer os.Remove(ChildPidfile(o.Pidfile))

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	signal.Ignore(syscall.SIGHUP)
	backoff := minBackoff
	for {
		for _, f := range o.ClearPidfiles {
			clearPidfile(f)
		}
		started := time.Now()
		err := runOnce(ctx, o, logf)
		if ctx.Err() != nil {
			note(logf, "supervisor: stopped")
			return nil
		}
		if time.Since(started) > stableAfter {
			backoff = minBackoff
		}
		note(logf, fmt.Sprintf("supervisor: %s exited (%v); restarting in %s", o.Args[0], err, backoff))
		select {
		case <-ctx.Done():
			note(logf, "supervisor: stopped")
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// clearPidfile waits for the process in path to be gone, then deletes it.
func clearPidfile(path string) {
	if pid := ReadPid(path, ""); pid != 0 {
		if !waitGone(pid, 5*time.Second) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid, 2*time.Second)
		}
	}
	os.Remove(path)
}

// runOnce starts the command and waits for it; when ctx ends it sends
// SIGTERM, then SIGKILL after o.StopTimeout.
func runOnce(ctx context.Context, o Options, log io.Writer) error {
	cmd := exec.Command(o.Args[0], o.Args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	// The output goes through a pipe (for the log's bound): a process the
	// command leaves behind holding it (dockerd's shims) must not keep
	// Wait from returning when the command itself has exited.
	cmd.WaitDelay = 2 * time.Second
	// If the supervisor itself is killed, its command goes too rather
	// than running on unsupervised.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := writePid(ChildPidfile(o.Pidfile), cmd.Process.Pid); err != nil {
		note(log, "supervisor: "+err.Error())
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		return err
	case <-time.After(o.StopTimeout):
		_ = cmd.Process.Kill()
		return <-done
	}
}

// rotatingLog is a log file that moves aside when it reaches max bytes, so
// a host's logs stay bounded (at most twice max) however long it runs.
type rotatingLog struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
}

func openLog(path string, max int64) (*rotatingLog, error) {
	if max <= 0 {
		max = 16 << 20
	}
	l := &rotatingLog{path: path, max: max}
	return l, l.open()
}

func (l *rotatingLog) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, st.Size()
	return nil
}

func (l *rotatingLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	written := 0
	for len(p) > 0 {
		if l.size >= l.max {
			l.f.Close()
			_ = os.Rename(l.path, l.path+".1")
			if err := l.open(); err != nil {
				return written, err
			}
		}
		chunk := p[:min(int64(len(p)), l.max-l.size)]
		n, err := l.f.Write(chunk)
		l.size += int64(n)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

func (l *rotatingLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

func note(w io.Writer, line string) {
	fmt.Fprintf(w, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
}

func writePid(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the pidfile: %w", err)
	}
	return os.Rename(tmp, path)
}

// ReadPid returns the pid in path if that process still runs and its
// command line contains want (so a pid the kernel gave to another process
// since is never signalled). 0 when there is none.
func ReadPid(path, want string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !strings.Contains(string(cmdline), want) {
		return 0
	}
	return pid
}

// Spawn starts a supervisor of args, logging to logPath, as a process of
// its own session that outlives the caller. prefix comes before the
// supervisor's command line (e.g. nsenter into a namespace, which execs
// it, so the pid stays the supervisor's). It returns the supervisor's pid
// once the supervisor has written its pidfile.
func Spawn(ctx context.Context, binary string, prefix []string, o Options, env []string) (int, error) {
	pidfile, logPath, args := o.Pidfile, o.Log, o.Args
	line := append(append([]string{}, prefix...), binary, "machine-supervise", "--pidfile", pidfile, "--log", logPath)
	for _, f := range o.ClearPidfiles {
		line = append(line, "--clear-pidfile", f)
	}
	line = append(line, "--")
	line = append(line, args...)
	cmd := exec.Command(line[0], line[1:]...)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start the supervisor: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	// Reaped here if it dies while this process lives; otherwise init
	// adopts it when we exit.
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		if ReadPid(pidfile, "machine-supervise") == pid {
			return pid, nil
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("the supervisor exited at once (%v); see %s", err, logPath)
		case <-deadline:
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return 0, errors.New("the supervisor did not start within 10s")
		case <-ctx.Done():
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
}

// Stop sends SIGTERM to the supervisor in pidfile and waits until it and
// its command are gone, killing both after timeout. A supervisor that is
// not running is no error. The command left by a killed supervisor is
// killed only if its command line names the pidfile's directory (the
// machine drivers' commands all do: their data is there), so a pid the
// kernel has since given to another process is left alone.
func Stop(pidfile string, timeout time.Duration) {
	child := ReadPid(ChildPidfile(pidfile), filepath.Dir(pidfile))
	pid := ReadPid(pidfile, "machine-supervise")
	if pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if !waitGone(pid, timeout) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid, 2*time.Second)
		}
	}
	// The command of a supervisor that was killed, or that did not stop
	// it in time.
	if child != 0 && Alive(child) {
		_ = syscall.Kill(child, syscall.SIGKILL)
		waitGone(child, 2*time.Second)
	}
	os.Remove(pidfile)
	os.Remove(ChildPidfile(pidfile))
}

// Running reports whether the supervisor in pidfile runs.
func Running(pidfile string) bool { return ReadPid(pidfile, "machine-supervise") != 0 }

// Alive reports whether pid runs; a zombie is gone for our purposes, as it
// runs nothing.
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return false
	}
	return true
}

func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !Alive(pid) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return !Alive(pid)
}
