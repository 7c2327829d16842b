package agent

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// freeBind is a ListenConfig whose sockets may bind an address the node
// does not have yet (IP_FREEBIND): a gateway whose bridge comes later.
func freeBind() *net.ListenConfig {
	return &net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
}
