package local

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// defaultPools are Docker's default address pools (172.17-31/16 and
// 192.168/16): a cluster's hosts must not take addresses the machine's
// engine hands its networks.
var defaultPools = []string{"172.17.0.0/16", "172.18.0.0/15", "172.20.0.0/14", "172.24.0.0/13", "192.168.0.0/16"}

// pickSubnet returns want (checked) or the configured default, else the
// first /24 of 10.213.0.0/16 that overlaps nothing in use.
func (d *Driver) pickSubnet(want string) (netip.Prefix, error) {
	taken, err := takenPrefixes()
	if err != nil {
		return netip.Prefix{}, err
	}
	if want == "" {
		want = d.cfg.Subnet
	}
	if want != "" {
		p, err := parseSubnet(want)
		if err != nil {
			return netip.Prefix{}, err
		}
		for _, t := range taken {
			if t.p.Overlaps(p) {
				return netip.Prefix{}, fmt.Errorf("subnet %s overlaps %s (%s): choose another with --subnet", p, t.p, t.what)
			}
		}
		return p, nil
	}
	for i := 0; i < 256; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(i), 0}), 24)
		free := true
		for _, t := range taken {
			free = free && !t.p.Overlaps(p)
		}
		if free {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /24 in 10.213.0.0/16 for the cluster's hosts: choose a subnet with --subnet")
}

type taken struct {
	p    netip.Prefix
	what string
}

// takenPrefixes lists what a cluster's subnet must not overlap: the
// machine's routes (other clusters' bridges among them), its resolvers,
// and Docker's address pools (the defaults and daemon.json's).
func takenPrefixes() ([]taken, error) {
	out, err := exec.Command("ip", "-4", "-o", "route", "show", "table", "all").Output()
	if err != nil {
		return nil, fmt.Errorf("list the machine's routes (ip route): %w", err)
	}
	var ts []taken
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		if dst == "local" || dst == "broadcast" || dst == "unicast" {
			if len(f) < 2 {
				continue
			}
			dst = f[1]
		}
		if p, ok := prefixOf(dst); ok && p.Bits() > 0 {
			ts = append(ts, taken{p, "a route of this machine"})
		}
	}
	for _, r := range resolvers("/etc/resolv.conf") {
		ts = append(ts, taken{netip.PrefixFrom(r, 32), "a resolver in /etc/resolv.conf"})
	}
	for _, s := range append(append([]string{}, defaultPools...), daemonPools("/etc/docker/daemon.json")...) {
		if p, ok := prefixOf(s); ok {
			ts = append(ts, taken{p, "a Docker address pool"})
		}
	}
	return ts, nil
}

func prefixOf(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is4() {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return netip.PrefixFrom(a, 32), true
	}
	return netip.Prefix{}, false
}

func resolvers(path string) []netip.Addr {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var as []netip.Addr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == "nameserver" {
			if a, err := netip.ParseAddr(fs[1]); err == nil && a.Is4() {
				as = append(as, a)
			}
		}
	}
	return as
}

// daemonPools reads the engine's own pools and bridge address from its
// daemon.json, if it has one.
func daemonPools(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var cfg struct {
		Bip   string `json:"bip"`
		Pools []struct {
			Base string `json:"base"`
		} `json:"default-address-pools"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return nil
	}
	var ps []string
	if cfg.Bip != "" {
		ps = append(ps, cfg.Bip)
	}
	for _, p := range cfg.Pools {
		ps = append(ps, p.Base)
	}
	return ps
}
