package execdriver

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// procStart reads a process's start time (clock ticks since boot) and
// whether it is a zombie, from /proc/<pid>/stat.
func procStart(pid int) (start uint64, zombie bool, err error) {
	_, fields, err := procStat(pid)
	if err != nil {
		return 0, false, err
	}
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0, false, errors.New("short /proc stat")
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("parse /proc stat start time: %w", err)
	}
	return start, fields[0] == "Z", nil
}

// stopped reports whether pid is stopped by a signal (state T): berth
// pause's SIGSTOP, or anyone's.
func stopped(pid int) bool {
	_, fields, err := procStat(pid)
	return err == nil && len(fields) > 0 && fields[0] == "T"
}

// procStat reads /proc/<pid>/stat: the command name (field 2) and the
// fields after it, from field 3 (state) on.
func procStat(pid int) (name string, fields []string, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", nil, err
	}
	// The command name may hold spaces and parentheses: the fields after
	// it come after its last ')'.
	s := string(b)
	i, j := strings.LastIndexByte(s, ')'), strings.IndexByte(s, '(')
	if i < 0 || j < 0 || j > i {
		return "", nil, errors.New("malformed /proc stat")
	}
	return s[j+1 : i], strings.Fields(s[i+1:]), nil
}

// alive reports whether pid still runs the process that started at start.
// A start of 0 (not readable when the task began) trusts the pid alone.
func alive(pid int, start uint64) bool {
	if start == 0 {
		return syscall.Kill(pid, 0) == nil
	}
	got, zombie, err := procStart(pid)
	return err == nil && !zombie && got == start
}

// parseSignal accepts "SIGTERM", "TERM", "sigterm" or a number; empty is SIGTERM.
func parseSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return syscall.SIGTERM, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
