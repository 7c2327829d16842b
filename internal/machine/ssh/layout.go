package ssh

import (
	"fmt"

	"github.com/berth-dev/berth/internal/machine"
)

// baseDir holds every host's directory on the remote machine.
const baseDir = "/var/lib/berth-machine"

// layout is where a host's parts live on the remote machine.
type layout struct {
	name string
	dir  string // the host's directory: all that Remove takes away, but the unit
}

func newLayout(name string) layout { return layout{name: name, dir: baseDir + "/" + name} }

func (l layout) bin() string     { return l.dir + "/berth" }
func (l layout) data() string    { return l.dir + "/data" }
func (l layout) log() string     { return l.dir + "/berth.log" }
func (l layout) pidfile() string { return l.dir + "/berth.pid" }
func (l layout) script() string  { return l.dir + "/run.sh" }
func (l layout) unit() string    { return "berth-machine-" + l.name + ".service" }
func (l layout) unitPath() string {
	return "/etc/systemd/system/" + l.unit()
}

// tokenFile holds the join token until the node is ready (berth reads it
// with --token-file, so it is never on a command line), and adminToken a
// first manager's admin token until Create has read it; both 0600 in the
// host's 0700 directory, removed once the node is ready (after joining,
// berth needs no token).
func (l layout) tokenFile() string  { return l.dir + "/" + machine.JoinTokenFile }
func (l layout) adminToken() string { return l.dir + "/admin-token" }

// superviseCmd is berth's supervisor command on the host: `berth
// machine-supervise` with pidfile and log, or with extra (--stop,
// --status) acting on that supervisor.
func (l layout) superviseCmd(extra ...string) string {
	return superviseCmd(l.bin(), l.pidfile(), extra...)
}

// superviseCmd is `bin machine-supervise --pidfile pidfile extra...` as a
// shell command.
func superviseCmd(bin, pidfile string, extra ...string) string {
	return quoteAll(append([]string{bin, "machine-supervise", "--pidfile", pidfile}, extra...))
}

// berthArgs is the berth command for spec on a host whose address is ip.
func berthArgs(l layout, spec machine.Spec, ip string) []string {
	var args []string
	switch {
	case spec.Role == machine.RoleAgent:
		args = machine.AgentArgs(l.bin(), spec.Name, l.data(), ip, spec.Join.Addr, spec.Labels)
	case spec.Join.Addr != "":
		args = machine.WithRegistryGCGrace(machine.ManagerArgs(l.bin(), spec.Name, l.data(), ip), spec.RegistryGCGrace)
		args = append(args, "--join", spec.Join.Addr)
	default:
		args = machine.WithRegistryGCGrace(machine.ManagerArgs(l.bin(), spec.Name, l.data(), ip), spec.RegistryGCGrace)
		return append(args, "--admin-token-file", l.adminToken())
	}
	return machine.WithTokenFile(args, l.tokenFile())
}

// runScript runs berth under berth's own supervisor (`berth
// machine-supervise`, package machine/supervise, as on the local driver's
// hosts), which restarts it when it dies and stops it on SIGTERM. The
// script execs the supervisor, so its pid is the supervisor's; under
// systemd the unit runs this script (systemd then restarts the supervisor
// should it die), so there is one way berth is started on a host.
func runScript(l layout, args []string) string {
	return fmt.Sprintf(`#!/bin/sh
# berth-machine %s: made by berth machine create; runs berth under its supervisor.
exec %s --log %s -- %s
`, l.name, l.superviseCmd(), quote(l.log()), quoteAll(args))
}

// unitFile runs runScript under systemd. systemd gives a system service
// no HOME, and berth's CLI wants one even for the commands that never
// read its configuration (the supervisor's, berth agent's): the host's own
// directory, so nothing of berth lands outside it.
func unitFile(l layout) string {
	return fmt.Sprintf(`[Unit]
Description=berth machine %s (made by berth machine create)
After=network-online.target docker.service
Wants=network-online.target

[Service]
Environment=HOME=%s
ExecStart=/bin/sh %s
Restart=always
RestartSec=1
KillMode=control-group

[Install]
WantedBy=multi-user.target
`, l.name, l.dir, l.script())
}
