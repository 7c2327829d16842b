package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// network is a cluster's bridge and who has which address on it, kept in
// Root/<cluster>/network.json under the root's lock.
type network struct {
	Bridge string            `json:"bridge"`
	Subnet string            `json:"subnet"`
	Hosts  map[string]string `json:"hosts"` // host name -> address
}

// shortID names links: interface names have at most 15 bytes, so they
// carry a hash of the root and the names instead of the names.
func shortID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])[:10]
}

func (d *Driver) bridgeName(cluster string) string { return "bb" + shortID(d.cfg.Root, cluster) }
func (d *Driver) vethName(cluster, name string) string {
	return "vb" + shortID(d.cfg.Root, cluster, name)
}
func netnsName(cluster, name string) string { return "berth-" + cluster + "-" + name }

// machineLock is the lock of every local driver on this machine, whatever
// its root: subnets are picked from the machine's routes, so two clusters
// made at once must not pick the same one.
const machineLock = "/run/berth-machines.lock"

// lock takes the machine's lock: every change to a cluster's network
// (bridge, rules, addresses) is made under it, so hosts made in parallel
// agree.
func (d *Driver) lock() (func(), error) {
	if err := os.MkdirAll(d.cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("make the machines directory: %w", err)
	}
	f, err := os.OpenFile(machineLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the machines lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock the machines directory: %w", err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func (d *Driver) networkFile(cluster string) string {
	return filepath.Join(d.cfg.Root, cluster, "network.json")
}

func (d *Driver) loadNetwork(cluster string) (*network, error) {
	b, err := os.ReadFile(d.networkFile(cluster))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the cluster's network record: %w", err)
	}
	var n network
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("read the cluster's network record %s: %w", d.networkFile(cluster), err)
	}
	if n.Hosts == nil {
		n.Hosts = map[string]string{}
	}
	return &n, nil
}

func (d *Driver) saveNetwork(cluster string, n *network) error {
	if err := os.MkdirAll(filepath.Dir(d.networkFile(cluster)), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(n, "", "  ")
	tmp := d.networkFile(cluster) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write the cluster's network record: %w", err)
	}
	return os.Rename(tmp, d.networkFile(cluster))
}

// joinNetwork gives host name an address on its cluster's bridge, making
// the bridge, its address and its iptables rules with the cluster's first
// host. It returns the bridge, the subnet and the host's address.
func (d *Driver) joinNetwork(ctx context.Context, cluster, name, want string) (*network, netip.Addr, error) {
	unlock, err := d.lock()
	if err != nil {
		return nil, netip.Addr{}, err
	}
	defer unlock()
	n, err := d.loadNetwork(cluster)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	if n == nil {
		subnet, err := d.pickSubnet(want)
		if err != nil {
			return nil, netip.Addr{}, err
		}
		n = &network{Bridge: d.bridgeName(cluster), Subnet: subnet.String(), Hosts: map[string]string{}}
		// Recorded before the bridge is made, so a failure half way is
		// undone by the same path as a host's removal.
		if err := d.saveNetwork(cluster, n); err != nil {
			return nil, netip.Addr{}, err
		}
		if err := d.makeBridge(ctx, n); err != nil {
			d.dropBridge(ctx, n)
			os.Remove(d.networkFile(cluster))
			return nil, netip.Addr{}, err
		}
	} else if want != "" && want != n.Subnet {
		if p, err := parseSubnet(want); err != nil || p.String() != n.Subnet {
			return nil, netip.Addr{}, fmt.Errorf("cluster %s has subnet %s: give --subnet %s or none", cluster, n.Subnet, n.Subnet)
		}
	}
	if _, ok := n.Hosts[name]; ok {
		return nil, netip.Addr{}, fmt.Errorf("host %s: %w", name, errExistsNet)
	}
	addr, err := freeAddr(n)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	n.Hosts[name] = addr.String()
	if err := d.saveNetwork(cluster, n); err != nil {
		return nil, netip.Addr{}, err
	}
	return n, addr, nil
}

var errExistsNet = errors.New("it already has an address on the cluster's bridge")

// leaveNetwork gives back host name's address; the last host of a cluster
// takes the bridge and its rules with it.
func (d *Driver) leaveNetwork(ctx context.Context, cluster, name string) error {
	unlock, err := d.lock()
	if err != nil {
		return err
	}
	defer unlock()
	n, err := d.loadNetwork(cluster)
	if err != nil || n == nil {
		return err
	}
	delete(n.Hosts, name)
	if len(n.Hosts) > 0 {
		return d.saveNetwork(cluster, n)
	}
	if err := d.dropBridge(ctx, n); err != nil {
		return err
	}
	return os.Remove(d.networkFile(cluster))
}

// gateway is the bridge's own address: the subnet's first.
func gateway(subnet netip.Prefix) netip.Addr { return subnet.Addr().Next() }

func freeAddr(n *network) (netip.Addr, error) {
	subnet := netip.MustParsePrefix(n.Subnet)
	used := map[string]bool{}
	for _, a := range n.Hosts {
		used[a] = true
	}
	for a := gateway(subnet).Next(); subnet.Contains(a); a = a.Next() {
		if !subnet.Contains(a.Next()) {
			break // the broadcast address
		}
		if !used[a.String()] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("subnet %s has no free address left for another host", n.Subnet)
}

// ruleComment tags berth's iptables rules, so only those are removed.
func ruleComment(bridge string) string { return "berth machine bridge " + bridge }

// rules are the machine's iptables rules for a cluster's bridge: NAT what
// hosts send outward, and accept what is forwarded between hosts (Docker
// sets FORWARD to DROP and bridged traffic passes iptables) and to and from
// the outside (the first rule covers host to host too).
func rules(n *network) [][]string {
	c := []string{"-m", "comment", "--comment", ruleComment(n.Bridge)}
	return [][]string{
		append([]string{"-t", "nat", "POSTROUTING", "-s", n.Subnet, "!", "-o", n.Bridge, "-j", "MASQUERADE"}, c...),
		append([]string{"-t", "filter", "FORWARD", "-i", n.Bridge, "-j", "ACCEPT"}, c...),
		append([]string{"-t", "filter", "FORWARD", "-o", n.Bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"}, c...),
	}
}

func (d *Driver) makeBridge(ctx context.Context, n *network) error {
	subnet := netip.MustParsePrefix(n.Subnet)
	gw := netip.PrefixFrom(gateway(subnet), subnet.Bits())
	steps := [][]string{
		{"ip", "link", "add", n.Bridge, "type", "bridge"},
		{"ip", "addr", "add", gw.String(), "dev", n.Bridge},
		{"ip", "link", "set", n.Bridge, "up"},
	}
	for _, r := range rules(n) {
		// -I: before Docker's own FORWARD rules, which drop.
		steps = append(steps, append([]string{"iptables", "-w", r[0], r[1], "-I", r[2]}, r[3:]...))
	}
	for _, s := range steps {
		if err := run(ctx, s...); err != nil {
			return fmt.Errorf("make the cluster's bridge %s: %w", n.Bridge, err)
		}
	}
	// Hosts reach the outside through the machine (Docker has turned it
	// on where it runs).
	const forward = "/proc/sys/net/ipv4/ip_forward"
	if b, err := os.ReadFile(forward); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(forward, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable IP forwarding: %w", err)
	}
	return nil
}

// dropBridge removes the bridge and every rule tagged with its comment; a
// part already gone is no error.
func (d *Driver) dropBridge(ctx context.Context, n *network) error {
	var errs []error
	for _, r := range rules(n) {
		for {
			args := append([]string{"iptables", "-w", r[0], r[1], "-C", r[2]}, r[3:]...)
			if run(ctx, args...) != nil {
				break // no such rule (left)
			}
			args[4] = "-D"
			if err := run(ctx, args...); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	if linkExists(n.Bridge) {
		if err := run(ctx, "ip", "link", "del", n.Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// run runs a command; its error carries the command's own words.
func run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s: %s", strings.Join(args[:min(3, len(args))], " "), msg)
	}
	return nil
}
