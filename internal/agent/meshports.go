package agent

import (
	"errors"
	"net"
	"net/netip"
	"syscall"

	"github.com/berth-dev/berth/internal/driver/docker"
	"github.com/berth-dev/berth/internal/types"
)

// meshRefuses rejects a task whose published ingress port this node's mesh
// cannot take, as the engine refused one whose port was taken before the
// mesh: the replica would run while its port answers nothing here.
func (l *loop) meshRefuses(t *types.Task, r *taskRecord, svc *types.Service) bool {
	err := l.a.mesh.takenPort(svc)
	if err == nil {
		return false
	}
	r.startErr = l.startError(err).Error()
	l.report(t, r, types.TaskStatus{State: types.TaskRejected, Error: r.startErr})
	return true
}

// takenPort is the first ingress port of svc that someone other than the
// mesh holds on this node, as an error naming the holder; nil if none. A
// port the mesh listens on already is fine; another is tried by binding it
// a moment, under mu, so the check never holds a port the proxy is opening.
func (m *mesh) takenPort(svc *types.Service) error {
	if m == nil || svc == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range svc.Ports {
		if p.Published == 0 || p.Mode != types.PortIngress {
			continue
		}
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		listen := netip.AddrPortFrom(netip.IPv4Unspecified(), p.Published)
		if m.proxy.Addr(proto, listen) != nil {
			continue
		}
		if err := probe(proto, listen.String()); errors.Is(err, syscall.EADDRINUSE) {
			return docker.PortHeld(p, err)
		}
	}
	return nil
}

// probe binds addr and lets it go.
func probe(proto, addr string) error {
	if proto == "udp" {
		pc, err := net.ListenPacket("udp", addr)
		if err == nil {
			pc.Close()
		}
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
	}
	return err
}
