package execdriver

import (
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

func TestUnhonoured(t *testing.T) {
	s := &types.Service{
		Name: "job", Driver: types.DriverExec, Command: []string{"/bin/true"},
		Mounts:      []types.Mount{{Type: types.MountVolume, Source: "data", Target: "/data"}},
		Ports:       []types.Port{{Target: 80, Published: 8080, Protocol: "tcp"}},
		Networks:    []types.NetworkAttachment{{Name: "default"}},
		Resources:   types.Resources{Limits: types.ResourceAmounts{MemoryBytes: 1 << 20}, Reservations: types.ResourceAmounts{MemoryBytes: 1 << 20}},
		Healthcheck: &types.Healthcheck{Test: []string{"CMD", "true"}},
		Env:         map[string]string{"A": "b"},
	}
	want := []string{"ports", "volumes", "deploy.resources.limits"}
	if got := Unhonoured(s); !slices.Equal(got, want) {
		t.Fatalf("Unhonoured = %v, want %v (command, env, healthcheck, reservations and the default network are honoured)", got, want)
	}
	if got := Unhonoured(&types.Service{Command: []string{"x"}, Networks: []types.NetworkAttachment{{Name: "default"}}}); len(got) != 0 {
		t.Fatalf("a plain exec service: %v", got)
	}
}
