package cli

import (
	"strings"
	"testing"
)

// TestAgentHelpListsOnlyItsFlags: the global Compose and manager flags do
// not apply to an agent, so its help does not offer them.
func TestAgentHelpListsOnlyItsFlags(t *testing.T) {
	h := newHarness(t)
	if code := h.run(t, "agent", "--help"); code != 0 {
		t.Fatalf("agent --help: exit %d", code)
	}
	help := h.out.String()
	for _, flag := range []string{"--file", "--profile", "--project-name", "--env-file"} {
		if strings.Contains(help, flag) {
			t.Errorf("agent --help lists %s:\n%s", flag, help)
		}
	}
	for _, flag := range []string{"--join", "--token", "--label", "--registry-port"} {
		if !strings.Contains(help, flag) {
			t.Errorf("agent --help does not list its own %s", flag)
		}
	}
	// Nor does a manager's, which keeps --addr (where it listens).
	hs := newHarness(t)
	if code := hs.run(t, "server", "--help"); code != 0 {
		t.Fatalf("server --help: exit %d", code)
	}
	for _, flag := range []string{"--file", "--profile", "--project-name", "--env-file"} {
		if strings.Contains(hs.out.String(), flag) {
			t.Errorf("server --help lists %s:\n%s", flag, hs.out)
		}
	}
	if !strings.Contains(hs.out.String(), "--addr") {
		t.Errorf("server --help lost --addr:\n%s", hs.out)
	}
	// Other commands still list the global flags.
	h2 := newHarness(t)
	h2.run(t, "up", "--help")
	if !strings.Contains(h2.out.String(), "--profile") {
		t.Errorf("up --help lost --profile:\n%s", h2.out)
	}
}

// TestAgentRegistryPortRange: a port outside 0..65535 is refused before
// the agent starts, saying what to give.
func TestAgentRegistryPortRange(t *testing.T) {
	for _, port := range []string{"-1", "65536"} {
		h := newHarness(t)
		code := h.run(t, "agent", "--join", "127.0.0.1:1", "--data-dir", t.TempDir(), "--registry-port", port)
		if code == 0 || !strings.Contains(h.errOut.String(), "--registry-port "+port) || !strings.Contains(h.errOut.String(), "0 to turn") {
			t.Errorf("--registry-port %s: exit %d, %q; want a refusal naming the flag", port, code, h.errOut)
		}
	}
}
