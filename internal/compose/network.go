package compose

import (
	"fmt"
	"time"

	ctypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/types"
)

// The service extensions of the routing mesh and draining.
const (
	meshExtension     = "x-berth-mesh"
	proxyExtension    = "x-berth-proxy-protocol"
	drainExtension    = "x-berth-drain-delay"
	maxDrainDelay     = 10 * time.Minute
	endpointModeKey   = "deploy.endpoint_mode"
	endpointModeVIP   = "vip"
	endpointModeDNSRR = "dnsrr"
	portModeIngress   = "ingress"
	portModeHost      = "host"
	meshPolicyAll     = "all"
	proxyProtocolNone = "none"
)

// applyNetworking converts deploy.endpoint_mode and the mesh extensions.
func applyNetworking(out *types.Service, s ctypes.ServiceConfig) []error {
	var errs []error
	if s.Deploy != nil {
		switch s.Deploy.EndpointMode {
		case "", endpointModeVIP:
			out.EndpointMode = types.EndpointVIP
		case endpointModeDNSRR:
			out.EndpointMode = types.EndpointDNSRR
		default:
			errs = append(errs, atKey(endpointModeKey, fmt.Errorf("%q is not %q or %q", s.Deploy.EndpointMode, endpointModeVIP, endpointModeDNSRR)))
		}
	}
	if v, ok := s.Extensions[meshExtension]; ok {
		switch v {
		case meshPolicyAll:
			out.Mesh = ""
		case types.MeshLocal:
			out.Mesh = types.MeshLocal
		default:
			errs = append(errs, atKey(meshExtension, fmt.Errorf("%v is not %q (every replica) or %q (only the node's own)", v, meshPolicyAll, types.MeshLocal)))
		}
	}
	if v, ok := s.Extensions[proxyExtension]; ok {
		switch v {
		case proxyProtocolNone:
			out.ProxyProtocol = ""
		case types.ProxyV2:
			out.ProxyProtocol = types.ProxyV2
		default:
			errs = append(errs, atKey(proxyExtension, fmt.Errorf("%v is not %q or %q", v, types.ProxyV2, proxyProtocolNone)))
		}
	}
	if v, ok := s.Extensions[drainExtension]; ok {
		str, _ := v.(string)
		d, err := time.ParseDuration(str)
		switch {
		case err != nil:
			errs = append(errs, atKey(drainExtension, fmt.Errorf("%v is not a duration such as 1s or 500ms", v)))
		case d < 0 || d > maxDrainDelay:
			errs = append(errs, atKey(drainExtension, fmt.Errorf("%s must be between 0s and %s", d, maxDrainDelay)))
		default:
			out.DrainDelay = d
		}
	}
	return errs
}

// portMode converts a port's mode: ingress (the mesh, the default) or host.
func portMode(mode string) (string, error) {
	switch mode {
	case "", portModeIngress:
		return types.PortIngress, nil
	case portModeHost:
		return types.PortHost, nil
	}
	return "", fmt.Errorf("mode %q is not %q or %q", mode, portModeIngress, portModeHost)
}
