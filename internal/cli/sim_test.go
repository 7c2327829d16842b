package cli

import (
	"strings"
	"testing"
)

// TestSimRefusesBadFlags: each bad flag is refused before any node starts,
// with a message naming it.
func TestSimRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "0"}, "--nodes 0"},
		{[]string{"--nodes", "20001"}, "--nodes 20001"},
		{[]string{"--memory", "lots"}, "--memory"},
		{[]string{"--cpus", "-1"}, "--cpus"},
		{[]string{"--exit-code", "256"}, "exit code 256"},
		{[]string{"--start-delay", "-1s"}, "start delay"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--name-prefix", "a b"}, "--name-prefix"},
		{[]string{"--label", "zone"}, "KEY=VALUE"},
		{[]string{"--parallel", "0"}, "--parallel"},
		{[]string{"--token", "BERTH-not-a-token"}, "join token"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			h := newHarness(t)
			args := append([]string{"sim", "--join", "127.0.0.1:1", "--data-dir", t.TempDir(), "--nodes", "2"}, tc.args...)
			code := h.run(t, args...)
			if code == 0 || !strings.Contains(h.errOut.String(), tc.want) {
				t.Errorf("exit %d, %q; want a refusal naming %q", code, h.errOut, tc.want)
			}
		})
	}
}

// TestSimHelpListsOnlyItsFlags: as for the agent, the Compose flags do not
// apply to a simulation.
func TestSimHelpListsOnlyItsFlags(t *testing.T) {
	h := newHarness(t)
	if code := h.run(t, "sim", "--help"); code != 0 {
		t.Fatalf("sim --help: exit %d", code)
	}
	help := h.out.String()
	if strings.Contains(help, "--profile") {
		t.Errorf("sim --help lists --profile:\n%s", help)
	}
	for _, flag := range []string{"--nodes", "--join", "--start-delay", "berth.sim.exit_after"} {
		if !strings.Contains(help, flag) {
			t.Errorf("sim --help does not tell %s", flag)
		}
	}
}
