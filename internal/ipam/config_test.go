package ipam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	pfx := netip.MustParsePrefix
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" = valid; else a part of the message
	}{
		{"default", DefaultConfig(), ""},
		{"brief's /16 of /24", Config{Pool: pfx("10.240.0.0/12"), NetworkBits: 16, SliceBits: 24}, ""},
		{"no pool", Config{NetworkBits: 18, SliceBits: 24}, "not an IPv4 prefix"},
		{"first version's", V1Config(), ""},
		{"denser slices", DefaultConfig().WithSlice(24), ""},
		{"small slices no smaller", Config{Pool: pfx("10.240.0.0/12"), NetworkBits: 20, SliceBits: 24, GrowBits: 13, SmallSliceBits: 24, WideRegionBits: 17}, "small slice size /24"},
		{"wide region past the start", Config{Pool: pfx("10.240.0.0/12"), NetworkBits: 20, SliceBits: 24, GrowBits: 13, SmallSliceBits: 27, WideRegionBits: 21}, "wide slice region /21"},
		{"wide region alone", Config{Pool: pfx("10.240.0.0/12"), NetworkBits: 20, SliceBits: 24, GrowBits: 13, WideRegionBits: 17}, "without small slices"},
		{"grows to the whole pool", Config{Pool: pfx("10.240.0.0/12"), NetworkBits: 20, SliceBits: 27, GrowBits: 12}, "never the whole pool"},
		{"grows smaller", Config{Pool: pfx("10.240.0.0/12"), NetworkBits: 20, SliceBits: 27, GrowBits: 21}, "network growth to /21"},
		{"grows past 65536 slices", Config{Pool: pfx("10.0.0.0/8"), NetworkBits: 20, SliceBits: 29, GrowBits: 9}, "network growth to /9"},
		{"VIPs the whole network", Config{Pool: pfx("10.240.0.0/12"), NetworkBits: 20, SliceBits: 27, VIPBits: 20}, "VIP range /20"},
		{"VIPs below a slice", Config{Pool: pfx("10.240.0.0/12"), NetworkBits: 20, SliceBits: 24, VIPBits: 26}, "VIP range /26"},
		{"ipv6", Config{Pool: pfx("fd00::/48"), NetworkBits: 56, SliceBits: 64}, "not an IPv4 prefix"},
		{"host bits", Config{Pool: pfx("10.240.0.1/12"), NetworkBits: 18, SliceBits: 24}, "did you mean 10.240.0.0/12"},
		{"network as big as pool", Config{Pool: pfx("10.240.0.0/12"), NetworkBits: 12, SliceBits: 24}, "network size /12"},
		{"too many networks", Config{Pool: pfx("10.0.0.0/8"), NetworkBits: 25, SliceBits: 28}, "network size /25"},
		{"slice as big as network", Config{Pool: pfx("10.240.0.0/12"), NetworkBits: 18, SliceBits: 18}, "slice size /18"},
		{"slice too small", Config{Pool: pfx("10.240.0.0/12"), NetworkBits: 20, SliceBits: 30}, "slice size /30 leaves no address"},
		{"slice too big", Config{Pool: pfx("10.0.0.0/8"), NetworkBits: 12, SliceBits: 15}, "slice size /15 is over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want Limits
	}{
		{"default", DefaultConfig(), Limits{Networks: 256, NodesPerNetwork: 15, MaxNodesPerNetwork: 15487, WideNodes: 127, VIPsPerNetwork: 254, AddrsPerSlice: 253, AddrsPerSmallSlice: 29}},
		{"first version's", V1Config(), Limits{Networks: 64, NodesPerNetwork: 63, MaxNodesPerNetwork: 63, WideNodes: 63, VIPsPerNetwork: 254, AddrsPerSlice: 253}},
		{"default with /24 slices only", DefaultConfig().WithSlice(24), Limits{Networks: 256, NodesPerNetwork: 15, MaxNodesPerNetwork: 2047, WideNodes: 2047, VIPsPerNetwork: 254, AddrsPerSlice: 253}},
		{"default with small /29 slices", DefaultConfig().WithSlice(29), Limits{Networks: 256, NodesPerNetwork: 15, MaxNodesPerNetwork: 61567, WideNodes: 127, VIPsPerNetwork: 254, AddrsPerSlice: 253, AddrsPerSmallSlice: 5}},
		{"a /16 pool", PlanFor(netip.MustParsePrefix("10.50.0.0/16"), 0), Limits{Networks: 16, NodesPerNetwork: 15, MaxNodesPerNetwork: 63 + 1024 - 512, WideNodes: 63, VIPsPerNetwork: 254, AddrsPerSlice: 253, AddrsPerSmallSlice: 29}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Limits(); got != tc.want {
				t.Fatalf("Limits = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCheckPool(t *testing.T) {
	pfx := netip.MustParsePrefix
	for _, tc := range []struct {
		name  string
		pool  netip.Prefix
		taken []Taken
		want  string
	}{
		{"default on a bare machine", DefaultPool, nil, ""},
		{"default route skipped", DefaultPool, []Taken{{pfx("0.0.0.0/0"), "a route"}}, ""},
		{"route inside", DefaultPool, []Taken{{pfx("10.241.3.0/24"), "a route of this machine"}}, "overlaps 10.241.3.0/24 (a route of this machine)"},
		{"resolver", DefaultPool, []Taken{{pfx("10.250.0.53/32"), "a resolver"}}, "a resolver"},
		{"docker pool", pfx("172.16.0.0/12"), nil, "a Docker default address pool"},
		{"local driver", pfx("10.0.0.0/8"), nil, ""}, // 10/8 holds 10.213/16: see below
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPool(tc.pool, tc.taken)
			if tc.name == "local driver" {
				if err == nil || !strings.Contains(err.Error(), "local machine driver") {
					t.Fatalf("CheckPool(10/8) = %v, want the local driver's range named", err)
				}
				return
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckPool: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckPool = %v, want %q", err, tc.want)
			}
		})
	}
}
