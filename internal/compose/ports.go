package compose

import (
	"fmt"
	"strconv"
	"strings"

	ctypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/types"
)

// convertPorts converts ports. compose-go has already expanded the short
// syntax's ranges ("9000-9001:9000-9001" is two ports); a published range
// left over maps to one target, which berth cannot do: it publishes each
// target on exactly one port.
func convertPorts(in []ctypes.ServicePortConfig) ([]types.Port, error) {
	var out []types.Port
	for i, p := range in {
		port, err := convertPort(p)
		if err != nil {
			return nil, atKey(fmt.Sprintf("ports[%d]", i), err)
		}
		out = append(out, port)
	}
	return out, nil
}

func convertPort(p ctypes.ServicePortConfig) (types.Port, error) {
	if p.Target == 0 || p.Target > 65535 {
		return types.Port{}, fmt.Errorf("target port %d is not between 1 and 65535", p.Target)
	}
	out := types.Port{Target: uint16(p.Target), Protocol: strings.ToLower(p.Protocol), HostIP: p.HostIP}
	switch out.Protocol {
	case "":
		out.Protocol = "tcp"
	case "tcp", "udp":
	default:
		return types.Port{}, fmt.Errorf("port %d: protocol %q is not supported; use tcp or udp", p.Target, p.Protocol)
	}
	published, err := publishedPort(p.Published)
	if err != nil {
		return types.Port{}, fmt.Errorf("port %d: %w", p.Target, err)
	}
	out.Published = published
	if out.Mode, err = portMode(p.Mode); err != nil {
		return types.Port{}, fmt.Errorf("port %d: %w", p.Target, err)
	}
	return out, nil
}

// publishedPort parses "", "8080" or a one-port range "8080-8080".
func publishedPort(s string) (uint16, error) {
	if s == "" {
		return 0, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	first, err := parsePortNumber(lo)
	if err != nil {
		return 0, fmt.Errorf("published port %q: %w", s, err)
	}
	if !isRange {
		return first, nil
	}
	last, err := parsePortNumber(hi)
	if err != nil {
		return 0, fmt.Errorf("published port %q: %w", s, err)
	}
	if first != last {
		return 0, fmt.Errorf("published range %s has %d ports for one target port; give a target range of the same length, or one published port", s, int(last)-int(first)+1)
	}
	return first, nil
}

func parsePortNumber(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number between 1 and 65535", s)
	}
	return uint16(n), nil
}
