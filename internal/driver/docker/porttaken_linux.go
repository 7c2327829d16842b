package docker

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// listeningProcess names the process on this host that holds port, as
// "process nginx (pid 812)", from /proc: the socket's inode in
// /proc/net/{tcp,udp}{,6}, then the process with a descriptor on it. It
// returns "" when it cannot tell (another network namespace, or no right
// to look at another user's descriptors).
func listeningProcess(proto string, port int) string {
	inodes := socketInodes(proto, port)
	if len(inodes) == 0 {
		return ""
	}
	pids, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range pids {
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			if err != nil || !inodes[link] {
				continue
			}
			comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
			return fmt.Sprintf("process %s (pid %s)", strings.TrimSpace(string(comm)), filepath.Base(dir))
		}
	}
	return ""
}

// socketInodes are the "socket:[N]" links of the sockets bound to port:
// listening for tcp (state 0A), any for udp.
func socketInodes(proto string, port int) map[string]bool {
	out := map[string]bool{}
	for _, table := range []string{proto, proto + "6"} {
		f, err := os.Open("/proc/net/" + table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 {
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			p, err := strconv.ParseUint(hexPort, 16, 16)
			if !ok || err != nil || int(p) != port || (proto == "tcp" && fields[3] != "0A") {
				continue
			}
			out["socket:["+fields[9]+"]"] = true
		}
		f.Close()
	}
	return out
}
