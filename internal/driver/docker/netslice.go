package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
)

// A cluster network on this node is a Docker bridge network whose subnet is
// the node's slice of it (TaskConfig.Slices): the engine hands containers
// addresses from the slice only, the bridge holds the slice's gateway, and
// the overlay routes the other nodes' slices. Its MTU is the overlay's, so
// a full frame still fits once encapsulated.

// Docker's bridge driver options.
const (
	optMTU        = "com.docker.network.driver.mtu"
	optBridgeName = "com.docker.network.bridge.name"
)

// bridgeName is the Linux bridge of network name: deterministic, so the
// same network has the same bridge on every run and every node, and at
// most Linux's 15 characters.
func bridgeName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "brt-" + hex.EncodeToString(sum[:])[:11]
}

// withSlice makes opts create the network on slice s.
func withSlice(opts *client.NetworkCreateOptions, name string, s driver.Slice) {
	opts.Driver = "bridge"
	opts.IPAM = &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{
		Subnet: s.Subnet, IPRange: s.Subnet, Gateway: s.Gateway,
	}}}
	opts.Options = map[string]string{optBridgeName: bridgeName(name)}
	if s.MTU > 0 {
		opts.Options[optMTU] = strconv.Itoa(s.MTU)
	}
}

// onSlice reports whether network n has slice s as its subnet.
func onSlice(n network.Summary, s driver.Slice) bool {
	for _, c := range n.IPAM.Config {
		if c.Subnet == s.Subnet {
			return true
		}
	}
	return false
}

// dropOffSlice removes the networks of found that are not on slice s (made
// before the node had the overlay, or for another slice), so the caller
// makes the network afresh, and returns those left, and whether one of
// the name stays because the engine cannot remove it. A network with
// containers on it is not removed: the app must go down first.
func (r *resourceEnsurer) dropOffSlice(ctx context.Context, app, name string, found []network.Summary, s driver.Slice) (keep []network.Summary, stuck bool, err error) {
	for _, n := range found {
		if onSlice(n, s) {
			keep = append(keep, n)
			continue
		}
		res, err := r.cli.NetworkInspect(ctx, n.ID, client.NetworkInspectOptions{})
		if err != nil {
			return nil, false, fmt.Errorf("inspect network %s: %w", name, err)
		}
		if k := len(res.Network.Containers); k > 0 {
			return nil, false, fmt.Errorf("network %s on this node has subnet %s, not the node's slice %s of the cluster network, and containers on it (%d): run `berth down` for app %s (or remove them) and `berth up` again",
				name, subnetsOf(n), s.Subnet, k, app)
		}
		if leaked, err := r.removeNetwork(ctx, n.ID); err != nil { // resources.go
			if leaked && n.Name == name {
				// Docker 20.10 can leak a network's endpoint count
				// (moby/moby#42119): no container is on it, yet it
				// cannot be removed until dockerd restarts. It is left
				// where it is, and the network is made on the slice
				// under a name of its own (slicedName): the engine
				// cannot start a container on a name two networks
				// share.
				stuck = true
				continue
			}
			return nil, false, fmt.Errorf("remove network %s (subnet %s) to make it again on the node's slice %s: %w", name, subnetsOf(n), s.Subnet, err)
		}
	}
	return keep, stuck, nil
}

// slicedName is the Docker name of network name on slice subnet when a
// network called name is stuck on this engine: name, a dot and a tag of
// the pair, which networkKeyOf turns back into name.
func slicedName(name string, subnet netip.Prefix) string {
	sum := sha256.Sum256([]byte(name + "@" + subnet.Masked().String()))
	return name + "." + hex.EncodeToString(sum[:])[:8]
}

// networkKeyOf is the network's name as berth knows it (the cluster
// network's key) for the Docker network a container is on with address a
// of a /bits subnet: the Docker name, or the name slicedName made it from.
func networkKeyOf(docker string, a netip.Addr, bits int) string {
	i := strings.LastIndexByte(docker, '.')
	if i <= 0 || bits <= 0 {
		return docker
	}
	if p := netip.PrefixFrom(a, bits); p.IsValid() && slicedName(docker[:i], p) == docker {
		return docker[:i]
	}
	return docker
}

// endpointsLeaked: the engine refused to remove a network for endpoints
// it says it has, after it was seen with no container on it.
func endpointsLeaked(err error) bool {
	return err != nil && strings.Contains(err.Error(), "has active endpoints")
}

// sliceTaken explains a failed create of network name on slice s: the
// engine refuses a subnet that overlaps one of its networks, which on a
// node of one cluster means another cluster (or a network made by hand)
// on this engine uses the same addresses.
func (r *resourceEnsurer) sliceTaken(ctx context.Context, name string, s driver.Slice, err error) error {
	res, lerr := r.cli.NetworkList(ctx, client.NetworkListOptions{})
	if lerr == nil {
		for _, n := range res.Items {
			for _, c := range n.IPAM.Config {
				if n.Name != name && c.Subnet.IsValid() && c.Subnet.Overlaps(s.Subnet) {
					return fmt.Errorf("create network %s on the node's slice %s: Docker network %s on this engine has subnet %s (another berth cluster on this host, or a network made outside berth): remove it, or give the cluster another --address-pool: %w",
						name, s.Subnet, n.Name, c.Subnet, err)
				}
			}
		}
	}
	return fmt.Errorf("create network %s on the node's slice %s: %w", name, s.Subnet, err)
}

func subnetsOf(n network.Summary) string {
	if len(n.IPAM.Config) == 0 {
		return "(none)"
	}
	s := n.IPAM.Config[0].Subnet.String()
	for _, c := range n.IPAM.Config[1:] {
		s += "," + c.Subnet.String()
	}
	return s
}

// addressesOf is a running container's IPv4 address on each of its
// networks, by Docker network name (the cluster network's key).
func addressesOf(c container.InspectResponse) map[string]string {
	if c.NetworkSettings == nil || len(c.NetworkSettings.Networks) == 0 {
		return nil
	}
	m := make(map[string]string, len(c.NetworkSettings.Networks))
	for name, ep := range c.NetworkSettings.Networks {
		if ep != nil && ep.IPAddress.Is4() {
			m[networkKeyOf(name, ep.IPAddress, ep.IPPrefixLen)] = ep.IPAddress.String()
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}
