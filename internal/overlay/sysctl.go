package overlay

import (
	"bytes"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netns"
)

const (
	forwardingPath = "/proc/sys/net/ipv4/ip_forward"
	bridgeNFPath   = "/proc/sys/net/bridge/bridge-nf-call-iptables"
)

// enableForwarding sets net.ipv4.ip_forward in the overlay's namespace.
func (o *Overlay) enableForwarding() error { return o.inOwnNS(setForwarding) }

// bridgeNetfilter reports whether bridged IPv4 traffic passes iptables in
// the overlay's namespace (br_netfilter loaded, bridge-nf-call-iptables on:
// Docker sets both).
func (o *Overlay) bridgeNetfilter() bool {
	on := false
	_ = o.inOwnNS(func() error {
		b, err := os.ReadFile(bridgeNFPath)
		on = err == nil && bytes.Equal(bytes.TrimSpace(b), []byte("1"))
		return nil
	})
	return on
}

// inOwnNS runs f in the overlay's namespace. /proc/sys/net answers for the
// namespace of the thread that opens it, so for another namespace a
// locked thread enters it first.
func (o *Overlay) inOwnNS(f func() error) error {
	if o.cfg.NetNS == "" {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is unlocked only once back in its own namespace:
		// otherwise it ends with this goroutine and nothing else runs in
		// the wrong namespace.
		back, err := inNamespace(o.cfg.NetNS)
		if err != nil {
			errc <- err
			return
		}
		errc <- f()
		if back() == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}

func setForwarding() error {
	b, err := os.ReadFile(forwardingPath)
	if err == nil && bytes.Equal(bytes.TrimSpace(b), []byte("1")) {
		return nil
	}
	if err := os.WriteFile(forwardingPath, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return nil
}

// inNamespace moves the calling (locked) thread into the namespace at
// path and returns how to move it back.
func inNamespace(path string) (func() error, error) {
	orig, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("open this thread's network namespace: %w", err)
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		orig.Close()
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		orig.Close()
		return nil, fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	return func() error {
		defer orig.Close()
		return netns.Set(orig)
	}, nil
}
