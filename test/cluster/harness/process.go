package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopTimeout bounds how long a signalled process may take to exit.
const stopTimeout = 30 * time.Second

// Process is one berth process (a manager or an agent) of a cluster. Its
// arguments stay fixed, so Start after Kill restarts it on the same data
// directory and addresses.
type Process struct {
	// Name is the node name given with --name ("m1", "a2").
	Name    string
	DataDir string
	LogPath string

	bin    string
	args   []string
	env    []string
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been reaped
	paused bool
	// stopped is set when the test stopped the process (Kill, Stop), so an
	// exit the test did not ask for shows as Crashed.
	stopped bool
	// cgroup, when set, is the cgroup v2 directory the process runs in,
	// so iptables can tell its packets from the others' (see Partition).
	cgroup string
}

// Args returns the arguments the process runs with (after the binary).
func (p *Process) Args() []string { return append([]string(nil), p.args...) }

// SetArgs replaces the arguments used by the next Start.
func (p *Process) SetArgs(args ...string) { p.args = args }

// Start runs the process, appending its output to LogPath. Starting a
// running process fails tb.
func (p *Process) Start(tb testing.TB) {
	tb.Helper()
	if p.Running() {
		tb.Fatalf("%s is already running", p.Name)
	}
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatalf("open the log of %s: %v", p.Name, err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== harness: berth %s\n", strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	if p.cgroup != "" {
		// The shell joins the cgroup, then becomes berth (same PID), so
		// every socket berth opens belongs to the cgroup.
		script := `echo $$ > "$HARNESS_CGROUP_PROCS" && exec "$0" "$@"`
		cmd = exec.Command("/bin/sh", append([]string{"-c", script, p.bin}, p.args...)...)
		cmd.Env = append(p.env, "HARNESS_CGROUP_PROCS="+filepath.Join(p.cgroup, "cgroup.procs"))
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", p.Name, err)
	}
	p.cmd, p.paused, p.stopped = cmd, false, false
	exited := make(chan struct{})
	p.exited = exited
	// The goroutine only reaps the process and ends with it; Kill and
	// Stop wait for it.
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
}

// Running reports whether the process was started and has not exited.
func (p *Process) Running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Crashed reports whether the process was started and has exited without
// the test stopping it: a manager that bricked, an agent that died.
func (p *Process) Crashed() bool { return p.cmd != nil && !p.Running() && !p.stopped }

// Exited is closed when the running process exits.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// PID is the process ID of the running process.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL (kill -9) and waits until the process is gone. Killing
// a process that is not running does nothing.
func (p *Process) Kill(tb testing.TB) {
	tb.Helper()
	p.Stop(tb, syscall.SIGKILL)
}

// Stop sends sig and waits until the process has exited; SIGKILL follows if
// it does not exit within stopTimeout.
func (p *Process) Stop(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	if !p.Running() {
		return
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(sig)
	if p.paused && sig != syscall.SIGKILL {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
	}
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		tb.Errorf("%s ignored %v for %s; killing it", p.Name, sig, stopTimeout)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.paused = false
}

// Pause freezes the process with SIGSTOP: it neither heartbeats nor
// answers, as a host that hangs or loses its network.
func (p *Process) Pause(tb testing.TB) {
	tb.Helper()
	p.signal(tb, syscall.SIGSTOP)
	p.paused = true
}

// Resume wakes a paused process with SIGCONT.
func (p *Process) Resume(tb testing.TB) {
	tb.Helper()
	p.signal(tb, syscall.SIGCONT)
	p.paused = false
}

func (p *Process) signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	if !p.Running() {
		tb.Fatalf("cannot send %v to %s: it is not running\n%s", sig, p.Name, p.Log(30))
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("send %v to %s: %v", sig, p.Name, err)
	}
}

// Log returns the last n lines of the process's log.
func (p *Process) Log(n int) string { return tail(p.LogPath, n) }

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
