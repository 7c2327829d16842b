package machine

import (
	"net"
	"slices"
	"strconv"
	"time"
)

// AgentPort is where an agent host's berth agent serves its own API
// (managers fetch logs there).
const AgentPort = 7710

// HostPort joins a host's address and one of its ports ("[v6]:p" too).
func HostPort(addr string, port int) string { return net.JoinHostPort(addr, strconv.Itoa(port)) }

// ManagerArgs is the command line of berth as a manager on a host whose
// address is addr; a driver appends how it joins (or bootstraps).
func ManagerArgs(bin, name, dataDir, addr string) []string {
	return []string{bin, "--addr", HostPort(addr, APIPort), "server", "--name", name,
		"--raft-addr", HostPort(addr, RaftPort), "--cluster-addr", HostPort(addr, ClusterPort),
		"--data-dir", dataDir}
}

// WithRegistryGCGrace appends a manager's --registry-gc-grace (hidden, for
// tests that watch image GC) when grace is set.
func WithRegistryGCGrace(args []string, grace time.Duration) []string {
	if grace == 0 {
		return args
	}
	return append(args, "--registry-gc-grace", grace.String())
}

// AgentArgs is the command line of berth as an agent on a host whose
// address is addr, joining through join, with labels in a stable order; a
// driver appends how it passes the token.
func AgentArgs(bin, name, dataDir, addr, join string, labels map[string]string) []string {
	args := []string{bin, "agent", "--join", join, "--name", name,
		"--data-dir", dataDir, "--listen", HostPort(addr, AgentPort)}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		args = append(args, "--label", k+"="+labels[k])
	}
	return args
}

// JoinTokenFile is the name of the file, in a host's directory, that holds
// its join token until the node is ready: berth reads it with
// --token-file, so the token is never on a command line (where any local
// user reads it in /proc/PID/cmdline). Mode 0600; the driver removes it
// once the node has joined, after which berth needs no token.
const JoinTokenFile = "join-token"

// WithTokenFile appends how berth finds its join token to args.
func WithTokenFile(args []string, path string) []string {
	return append(args, "--token-file", path)
}
