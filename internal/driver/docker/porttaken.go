package docker

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// portTakenError is a container that could not start because a port it
// publishes is held by someone else. Its text is one sentence for the user;
// the engine's own (an endpoint name, a hash, the userland proxy) stays
// behind Unwrap.
type portTakenError struct {
	port   types.Port
	holder string // "task shop-web-1", "container redis", "process nginx (pid 812)"
	err    error
}

func (e *portTakenError) Error() string {
	return fmt.Sprintf("port %s is taken by %s; free it, or publish another port", portLabel(e.port), e.holder)
}

func (e *portTakenError) Unwrap() error { return e.err }

func portLabel(p types.Port) string {
	host := p.HostIP
	if host == "" {
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, strconv.Itoa(int(p.Published))) + "/" + protocolOf(p)
}

func protocolOf(p types.Port) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return p.Protocol
}

// The engine's two ways of saying a published port is taken: by another
// container ("Bind for 0.0.0.0:8080 failed: port is already allocated"),
// or by a process, through the userland proxy ("listen tcp4
// 127.0.0.1:8080: bind: address already in use").
var portTakenRE = regexp.MustCompile(`(?:Bind for \S+:(\d+) failed: port is already allocated|listen (?:tcp|udp)[46]? \S+:(\d+): bind: address already in use)`)

// asPortTaken turns the engine's error for a start that failed on a taken
// port into a portTakenError naming the holder; any other error is
// returned as it is.
func (d *Driver) asPortTaken(ctx context.Context, cfg *driver.TaskConfig, err error) error {
	m := portTakenRE.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	n, _ := strconv.Atoi(m[1] + m[2]) // one of the two groups matched
	port := types.Port{Published: uint16(n), Protocol: "tcp"}
	for _, p := range cfg.Service.Ports {
		if int(p.Published) == n {
			port = p
			break
		}
	}
	return &portTakenError{port: port, holder: d.portHolder(ctx, cfg.Task.ID, port), err: err}
}

// portHolder names who holds port: a container publishing it (a berth
// task by its name), else the process listening on it, as far as this
// agent may look.
func (d *Driver) portHolder(ctx context.Context, self string, p types.Port) string {
	f := make(client.Filters).Add("publish", fmt.Sprintf("%d/%s", p.Published, protocolOf(p)))
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{Filters: f})
	if err == nil {
		for _, c := range res.Items {
			if c.Labels[LabelTask] != self {
				return containerLabel(c)
			}
		}
	}
	if proc := listeningProcess(protocolOf(p), int(p.Published)); proc != "" {
		return proc
	}
	return "a process on the node"
}

// containerLabel names a container the way the user knows it: a berth task
// by its replica name, any other by its container name.
func containerLabel(c container.Summary) string {
	if app, svc := c.Labels[LabelApp], c.Labels[LabelService]; app != "" && svc != "" {
		t := types.Task{App: app, Service: svc, NodeID: c.Labels[LabelNode]}
		t.Slot, _ = strconv.Atoi(c.Labels[LabelSlot])
		return "task " + t.Name()
	}
	if len(c.Names) > 0 {
		return "container " + strings.TrimPrefix(c.Names[0], "/")
	}
	return "container " + c.ID[:min(len(c.ID), 12)]
}

// recentIDs remembers container IDs for a minute, long enough for their
// events to arrive; older ones are forgotten on the next add, so the set
// stays as small as the minute's additions. The driver keeps two: the
// containers discarded after a failed start, and those Start started
// itself (whose start event is no news).
type recentIDs struct {
	mu  sync.Mutex
	ids map[string]time.Time
}

const recentFor = time.Minute

func (s *recentIDs) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.ids == nil {
		s.ids = map[string]time.Time{}
	}
	for k, at := range s.ids {
		if now.Sub(at) > recentFor {
			delete(s.ids, k)
		}
	}
	s.ids[id] = now
}

func (s *recentIDs) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.ids[id]
	return ok && time.Since(at) <= recentFor
}

// take reports whether id is in the set and removes it: a later event of
// the same container (a start by anyone else) is news again.
func (s *recentIDs) take(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.ids[id]
	delete(s.ids, id)
	return ok && time.Since(at) <= recentFor
}
