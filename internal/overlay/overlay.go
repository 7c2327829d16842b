package overlay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Defaults for Config. Every node of a cluster must use the same VNI and
// port.
const (
	DefaultDevice = "berth-vx"
	DefaultVNI    = 4242
	DefaultPort   = 4789 // IANA's VXLAN port
	// overhead is what VXLAN over IPv4 adds to a frame: outer IPv4 (20),
	// UDP (8), VXLAN (8) and the inner Ethernet header (14).
	overhead = 50
	// maxEntries bounds networks, peers and a peer's slices.
	maxEntries = 4096
	alias      = "berth overlay"
)

// ErrInvalid marks a bad Config or Desired state; the message names the field.
var ErrInvalid = errors.New("invalid")

// ErrNotOurs marks a device of the overlay's name that berth did not make.
var ErrNotOurs = errors.New("not berth's")

// Config is one node's overlay settings.
type Config struct {
	// Underlay is this node's address on the network between nodes.
	Underlay netip.Addr
	// Device is the VXLAN device's name; DefaultDevice when empty.
	Device string
	// VNI and Port are the cluster's; DefaultVNI and DefaultPort when 0.
	VNI, Port int
	// NetNS is the path of the network namespace to work in (as
	// /run/netns/NAME); empty for the caller's own.
	NetNS string
}

// Network is one cluster network as this node sees it.
type Network struct {
	// Subnet is the network's subnet: traffic inside it is let through.
	Subnet netip.Prefix
	// Slice is this node's slice of Subnet; zero when the node has none.
	Slice netip.Prefix
}

// Peer is another node.
type Peer struct {
	Underlay netip.Addr
	// MAC is the peer's device's; zero means MACFor(Underlay), as every
	// berth node sets its own.
	MAC net.HardwareAddr
	// Slices are the peer's slices, of any of the Desired networks.
	Slices []netip.Prefix
}

// Desired is the state Apply converges to.
type Desired struct {
	// Subnets are every cluster network's subnet, this node's or not:
	// routed unreachable, so what of them has no route of its own
	// (another network's slice, a VIP not DNATed) is refused here rather
	// than sent by the default route.
	Subnets  []netip.Prefix
	Networks []Network
	Peers    []Peer
	// VIPs are the services' virtual addresses on Networks, balanced over
	// their replicas (see vip.go).
	VIPs []VIP
	// LocalPorts are the published ports of local-mode services with
	// replicas on this node, DNATed to them (see localport.go).
	LocalPorts []LocalPort
}

// Changes counts what one Apply added and removed (addresses, routes,
// neighbour and FDB entries, the device itself, rule sets rewritten).
type Changes struct{ Added, Removed int }

// Overlay converges one node's VXLAN device to a Desired state.
type Overlay struct {
	cfg Config
	// udp is the UDP-carrying VIPs' backends as last applied (udpVIPs):
	// when they change, conntrack entries to replicas that left go.
	udp map[netip.Addr]string
	// hairpin is the bridge ports last seen in hairpin mode, by index
	// (and name, in case the index is used again).
	hairpin map[int]string
}

// New checks cfg and fills its defaults. It touches nothing.
func New(cfg Config) (*Overlay, error) {
	if !cfg.Underlay.IsValid() || !cfg.Underlay.Is4() {
		return nil, fmt.Errorf("underlay address %q must be this node's IPv4 address: %w", cfg.Underlay, ErrInvalid)
	}
	if cfg.Device == "" {
		cfg.Device = DefaultDevice
	}
	if len(cfg.Device) > 15 {
		return nil, fmt.Errorf("device name %q is longer than Linux's 15 characters: %w", cfg.Device, ErrInvalid)
	}
	if cfg.VNI == 0 {
		cfg.VNI = DefaultVNI
	}
	if cfg.VNI < 1 || cfg.VNI >= 1<<24 {
		return nil, fmt.Errorf("VNI %d must be 1 to %d: %w", cfg.VNI, 1<<24-1, ErrInvalid)
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("VXLAN port %d must be 1 to 65535: %w", cfg.Port, ErrInvalid)
	}
	return &Overlay{cfg: cfg}, nil
}

// MACFor is the MAC of the overlay device of the node with underlay
// address a: locally administered, unicast, the address in its last four
// bytes, so no two nodes share one and every node can compute every
// other's.
func MACFor(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x0a, 0xbe, b[0], b[1], b[2], b[3]}
}

// handle opens a netlink handle in the overlay's namespace.
func (o *Overlay) handle() (*netlink.Handle, error) {
	if o.cfg.NetNS == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("open netlink: %w", err)
		}
		return h, nil
	}
	ns, err := netns.GetFromPath(o.cfg.NetNS)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", o.cfg.NetNS, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("open netlink in %s: %w", o.cfg.NetNS, err)
	}
	return h, nil
}

// Apply converges the device, its entries and the rules to d. On an
// error it stops where it was; the next Apply goes on from there.
func (o *Overlay) Apply(ctx context.Context, d Desired) (Changes, error) {
	var ch Changes
	if err := o.check(d); err != nil {
		return ch, err
	}
	h, err := o.handle()
	if err != nil {
		return ch, err
	}
	defer h.Close()
	if err := o.convergeDevice(h, d, &ch); err != nil {
		return ch, err
	}
	if err := o.convergeRules(ctx, d, &ch); err != nil {
		return ch, err
	}
	if err := o.enableForwarding(); err != nil {
		return ch, err
	}
	if err := o.convergeHairpin(h, d); err != nil {
		return ch, err
	}
	if err := o.convergeVIPRoutes(h, d, &ch); err != nil {
		return ch, err
	}
	if err := o.convergePoolRoute(h, d, &ch); err != nil {
		return ch, err
	}
	return ch, o.flushUDP(h, d)
}

// convergeDevice makes the device and its entries, but only when a peer
// has a slice: with none (one node) it would carry nothing, and a device
// left from before is deleted.
func (o *Overlay) convergeDevice(h *netlink.Handle, d Desired, ch *Changes) error {
	if !hasPeerSlices(d) {
		l, err := o.ourLink(h)
		if err != nil || l == nil {
			return err
		}
		if err := h.LinkDel(l); err != nil {
			return fmt.Errorf("delete device %s, which no peer needs: %w", o.cfg.Device, err)
		}
		ch.Removed++
		return nil
	}
	link, err := o.ensureLink(h, ch)
	if err != nil {
		return err
	}
	idx := link.Attrs().Index
	steps := []func(*netlink.Handle, int, Desired, *Changes) error{
		o.convergeAddrs, o.convergeFDB, o.convergeNeighs, o.convergeRoutes,
	}
	for _, step := range steps {
		if err := step(h, idx, d, ch); err != nil {
			return err
		}
	}
	return nil
}

// MTU returns the device's MTU, for the containers' networks: the
// underlay's less the encapsulation.
func (o *Overlay) MTU() (int, error) {
	h, err := o.handle()
	if err != nil {
		return 0, err
	}
	defer h.Close()
	under, err := o.underlayLink(h)
	if err != nil {
		return 0, err
	}
	return under.Attrs().MTU - overhead, nil
}

// Remove deletes the device (its addresses, routes and entries go with
// it) and the rules. Removing what is already gone is no error.
func (o *Overlay) Remove(ctx context.Context) error {
	h, err := o.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	if l, err := o.ourLink(h); err != nil {
		errs = append(errs, err)
	} else if l != nil {
		if err := h.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("delete device %s: %w", o.cfg.Device, err))
		}
	}
	errs = append(errs, o.removeRules(ctx), o.removePoolRoutes(h), o.removeVIPRoutes(h))
	return errors.Join(errs...)
}
