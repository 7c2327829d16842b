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
		{"brief's /16 of /24", Config{pfx("10.240.0.0/12"), 16, 24}, ""},
		{"no pool", Config{NetworkBits: 18, SliceBits: 24}, "not an IPv4 prefix"},
		{"ipv6", Config{pfx("fd00::/48"), 56, 64}, "not an IPv4 prefix"},
		{"host bits", Config{pfx("10.240.0.1/12"), 18, 24}, "did you mean 10.240.0.0/12"},
		{"network as big as pool", Config{pfx("10.240.0.0/12"), 12, 24}, "network size /12"},
		{"too many networks", Config{pfx("10.0.0.0/8"), 25, 28}, "network size /25"},
		{"slice as big as network", Config{pfx("10.240.0.0/12"), 18, 18}, "slice size /18"},
		{"slice too small", Config{pfx("10.240.0.0/12"), 20, 30}, "slice size /30 leaves no address"},
		{"slice too big", Config{pfx("10.0.0.0/8"), 12, 15}, "slice size /15 is over"},
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
	got := DefaultConfig().Limits()
	want := Limits{Networks: 64, NodesPerNetwork: 63, VIPsPerNetwork: 254, AddrsPerSlice: 252}
	if got != want {
		t.Fatalf("Limits = %+v, want %+v", got, want)
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
