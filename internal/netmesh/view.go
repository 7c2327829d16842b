package netmesh

import (
	"fmt"
	"net/netip"
	"strings"
)

// EndpointMode is how a service name resolves (Compose's deploy.endpoint_mode).
type EndpointMode string

const (
	// ModeVIP answers the service's one stable virtual address; the mesh
	// proxy balances it. The default, as in Swarm.
	ModeVIP EndpointMode = "vip"
	// ModeDNSRR answers the healthy replicas' own addresses, with a short TTL.
	ModeDNSRR EndpointMode = "dnsrr"
)

// Limits on a View, so a store with a runaway service cannot make the DNS
// server take unbounded memory. They are far above what one node serves.
const (
	MaxNetworks        = 1024
	MaxServicesPerNet  = 4096
	MaxReplicas        = 1024
	MaxAliases         = 32
	MaxPorts           = 32
	MaxMembers         = 65536
	MaxNetworksPerAddr = 64
	maxLabel           = 63
)

// View is the whole of what the DNS server answers from. The agent builds it
// from its store watch and hands it over with DNS.Replace; it replaces the
// previous view at once, so a query never sees half of an update.
type View struct {
	Networks []Network
	// Members says which networks each container address asking a question
	// is on, and in which app it runs (its own app's services win when
	// several apps share a network and a name).
	Members []Member
	// Subnets answer for an asker that is not a member (a container that
	// is starting, or not healthy yet, is not in the store's endpoints):
	// an address inside a network's subnet is on that network, since the
	// overlay lets no other address in. It sees that network only.
	Subnets []Subnet
}

// Subnet is a network's address range, for askers not in Members.
type Subnet struct {
	Prefix  netip.Prefix
	Network string
	App     string // the network's app; "" for an external network
}

// Network is one cluster network and the services on it.
type Network struct {
	Name     string
	Services []Service
}

// Service is one service as seen on one network.
type Service struct {
	Name string
	// App is the Compose project; it gives the SERVICE.APP name, which tells
	// two apps' services of one name apart on a shared (external) network.
	App  string
	Mode EndpointMode
	// VIP is the service's virtual address on this network (ModeVIP only).
	VIP     netip.Addr
	Aliases []string
	// Ports give the SRV records (_NAME._PROTO.SERVICE); none means SRV
	// answers carry port 0.
	Ports []Port
	// Replicas are the healthy, running replicas only: the caller leaves out
	// any that is starting, unhealthy or stopping, so DNS never answers a
	// replica that is going away.
	Replicas []Replica
}

// Port is one named port of a service, for SRV.
type Port struct {
	Name     string
	Protocol string // "tcp" or "udp"
	Port     uint16
}

// Replica is one healthy replica's address on the network.
type Replica struct {
	Slot int
	Addr netip.Addr
}

// Member is one container address that may ask questions.
type Member struct {
	Addr     netip.Addr
	App      string
	Networks []string
}

// Validate checks the bounds and the names; the error names the field.
func (v *View) Validate() error {
	if len(v.Networks) > MaxNetworks {
		return fmt.Errorf("view.networks: %d networks, at most %d", len(v.Networks), MaxNetworks)
	}
	if len(v.Members) > MaxMembers {
		return fmt.Errorf("view.members: %d members, at most %d", len(v.Members), MaxMembers)
	}
	for i := range v.Networks {
		if err := v.Networks[i].validate(); err != nil {
			return fmt.Errorf("view.networks[%d]: %w", i, err)
		}
	}
	if len(v.Subnets) > MaxNetworks {
		return fmt.Errorf("view.subnets: %d subnets, at most %d", len(v.Subnets), MaxNetworks)
	}
	for i, sn := range v.Subnets {
		if !sn.Prefix.IsValid() || sn.Network == "" {
			return fmt.Errorf("view.subnets[%d]: needs a prefix and a network", i)
		}
	}
	for i, m := range v.Members {
		if !m.Addr.IsValid() {
			return fmt.Errorf("view.members[%d].addr: not an address", i)
		}
		if len(m.Networks) > MaxNetworksPerAddr {
			return fmt.Errorf("view.members[%d].networks: %d networks, at most %d", i, len(m.Networks), MaxNetworksPerAddr)
		}
	}
	return nil
}

func (n *Network) validate() error {
	if n.Name == "" {
		return fmt.Errorf("name: empty")
	}
	if len(n.Services) > MaxServicesPerNet {
		return fmt.Errorf("services: %d services, at most %d", len(n.Services), MaxServicesPerNet)
	}
	for i := range n.Services {
		if err := n.Services[i].validate(); err != nil {
			return fmt.Errorf("services[%d] (%s): %w", i, n.Services[i].Name, err)
		}
	}
	return nil
}

func (s *Service) validate() error {
	if !validLabel(s.Name) {
		return fmt.Errorf("name: %q is not a DNS label", s.Name)
	}
	if s.App != "" && !validLabel(s.App) {
		return fmt.Errorf("app: %q is not a DNS label", s.App)
	}
	switch s.Mode {
	case ModeVIP:
		if !s.VIP.IsValid() {
			return fmt.Errorf("vip: endpoint_mode vip needs an address")
		}
	case ModeDNSRR:
	default:
		return fmt.Errorf("mode: %q is neither vip nor dnsrr", s.Mode)
	}
	if len(s.Aliases) > MaxAliases {
		return fmt.Errorf("aliases: %d aliases, at most %d", len(s.Aliases), MaxAliases)
	}
	for _, a := range s.Aliases {
		if !validName(a) {
			return fmt.Errorf("aliases: %q is not a DNS name", a)
		}
	}
	if len(s.Ports) > MaxPorts {
		return fmt.Errorf("ports: %d ports, at most %d", len(s.Ports), MaxPorts)
	}
	for _, p := range s.Ports {
		if !validLabel(p.Name) || (p.Protocol != "tcp" && p.Protocol != "udp") {
			return fmt.Errorf("ports: %q/%q needs a name and tcp or udp", p.Name, p.Protocol)
		}
	}
	if len(s.Replicas) > MaxReplicas {
		return fmt.Errorf("replicas: %d replicas, at most %d", len(s.Replicas), MaxReplicas)
	}
	for _, r := range s.Replicas {
		if !r.Addr.IsValid() || r.Slot < 0 {
			return fmt.Errorf("replicas: slot %d needs an address and a slot >= 0", r.Slot)
		}
	}
	return nil
}

// ValidLabel reports whether s can be a service's, an app's or a port's
// name in DNS: one label (the rule Compose's names must meet to be
// answered by the agent's DNS).
func ValidLabel(s string) bool { return validLabel(s) }

// ValidName reports whether s can be a network alias: a dotted name of
// valid labels.
func ValidName(s string) bool { return validName(s) }

// validLabel reports whether s is one DNS label of letters, digits, '-' and
// '_' (Compose allows '_' in names; resolvers pass it through).
func validLabel(s string) bool {
	if s == "" || len(s) > maxLabel {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}

// validName reports whether s is a dotted name of valid labels.
func validName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if !validLabel(l) {
			return false
		}
	}
	return true
}
