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

// secret is where the join token waits for berth's first start, and out
// where a first manager's stdout (its admin token) goes: both on /run
// (tmpfs where systemd runs), 0600, removed once the node is ready; after
// joining, berth needs no token.
func (l layout) secret() string { return "/run/berth-machine-" + l.name + ".env" }
func (l layout) out() string    { return "/run/berth-machine-" + l.name + ".out" }

// berthArgs is the berth command for spec on a host whose address is ip.
func berthArgs(l layout, spec machine.Spec, ip string) []string {
	if spec.Role == machine.RoleManager {
		args := machine.ManagerArgs(l.bin(), spec.Name, l.data(), ip)
		if spec.Join.Addr != "" {
			args = append(args, "--join", spec.Join.Addr)
		}
		return args
	}
	return machine.AgentArgs(l.bin(), spec.Name, l.data(), ip, spec.Join.Addr, spec.Labels)
}

// runScript keeps berth running: it restarts it a second after it exits.
// The token comes from l.secret() while that file exists, never from the
// script (which stays on disk). Under systemd the unit runs this script,
// so there is one way berth is started on a host.
//
// TODO(supervisor): when `berth machine-supervise` lands, run berth under
// it instead of this loop.
func runScript(l layout, args []string) string {
	return fmt.Sprintf(`#!/bin/sh
# berth-machine %[1]s: made by berth machine create; keeps berth running.
echo $$ > %[2]s
while :; do
	BERTH_JOIN_TOKEN=
	if [ -r %[3]s ]; then . %[3]s; fi
	out=%[4]s
	if [ -e %[5]s ]; then out=%[5]s; fi
	%[6]s ${BERTH_JOIN_TOKEN:+--token "$BERTH_JOIN_TOKEN"} >>"$out" 2>>%[4]s </dev/null
	echo "berth exited with status $?; restarting in 1s" >>%[4]s
	sleep 1
done
`, l.name, quote(l.pidfile()), quote(l.secret()), quote(l.log()), quote(l.out()), quoteAll(args))
}

// unitFile runs runScript under systemd.
func unitFile(l layout) string {
	return fmt.Sprintf(`[Unit]
Description=berth machine %s (made by berth machine create)
After=network-online.target docker.service
Wants=network-online.target

[Service]
ExecStart=/bin/sh %s
Restart=always
RestartSec=1
KillMode=control-group

[Install]
WantedBy=multi-user.target
`, l.name, l.script())
}
