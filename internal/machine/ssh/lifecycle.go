package ssh

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/machine"
	xssh "golang.org/x/crypto/ssh"
)

// connect logs in to a made host again, with what Create recorded.
func (d *Driver) connect(ctx context.Context, h *machine.Host) (*remote, layout, bool, error) {
	if h == nil || h.Local[localAddr] == "" || h.Local[localDir] == "" {
		return nil, layout{}, false, fmt.Errorf("%w: the ssh driver has no record of how to reach this host", machine.ErrNotFound)
	}
	if err := checkName(h.Name); err != nil {
		return nil, layout{}, false, err
	}
	l := newLayout(h.Name)
	if h.Local[localDir] != l.dir {
		return nil, layout{}, false, fmt.Errorf("the record of host %s names directory %s, not %s", h.Name, h.Local[localDir], l.dir)
	}
	insecure, _ := strconv.ParseBool(h.Local[localInsecure])
	o := options{addr: h.Local[localAddr], user: h.Local[localUser], key: h.Local[localKey], knownHosts: h.Local[localKnownHosts], insecure: insecure}
	if o.user == "" {
		o.user = "root"
	}
	c, err := d.dial(ctx, o)
	if err != nil {
		return nil, l, false, err
	}
	systemd, _ := strconv.ParseBool(h.Local[localSystemd])
	return &remote{c: c, sudo: o.user != "root"}, l, systemd, nil
}

// stopCmd stops berth on the host: its unit, or its supervisor (which
// stops berth; `machine-supervise --stop` kills both if they linger).
// Nothing running is no error; nor is a host whose binary never arrived
// (nothing of it can run then).
func stopCmd(l layout, systemd bool) string {
	if systemd {
		return "systemctl stop " + quote(l.unit()) + " 2>/dev/null || true"
	}
	return fmt.Sprintf("if [ -x %s ]; then %s; fi", quote(l.bin()), l.superviseCmd("--stop"))
}

// runningCmd prints running when berth's supervisor runs on the host.
func runningCmd(l layout, systemd bool) string {
	if systemd {
		return "if systemctl is-active --quiet " + quote(l.unit()) + "; then echo running; fi"
	}
	return l.superviseCmd("--status")
}

// teardown stops berth and removes every part of the host: its unit, its
// directory and its files on /run. It looks for each part rather than
// trusting a record, so it also clears a host whose Create was cut short.
// force goes on past a failed part.
func teardown(ctx context.Context, r *remote, l layout, force bool) error {
	cmds := []string{
		fmt.Sprintf("if [ -e %[1]s ]; then systemctl disable --now %[2]s 2>/dev/null; rm -f %[1]s && systemctl daemon-reload; fi", quote(l.unitPath()), quote(l.unit())),
		stopCmd(l, false),
		"rm -rf " + quote(l.dir),
	}
	var errs []error
	for _, c := range cmds {
		if _, err := r.run(ctx, c, nil); err != nil {
			if !force {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Start runs berth on a stopped host again.
func (d *Driver) Start(ctx context.Context, h *machine.Host) error {
	r, l, systemd, err := d.connect(ctx, h)
	if err != nil {
		return fmt.Errorf("start host %s: %w", h.Name, err)
	}
	defer r.c.Close()
	if systemd {
		_, err = r.run(ctx, "systemctl start "+quote(l.unit()), nil)
	} else if out, _ := r.run(ctx, runningCmd(l, false), nil); strings.TrimSpace(out) == "running" {
		return nil
	} else {
		err = startSupervised(ctx, r, l)
	}
	if err != nil {
		return fmt.Errorf("start host %s: %w", h.Name, err)
	}
	return nil
}

// Stop stops berth on the host; its tasks' processes stop with it only
// where they are its children (exec driver), containers keep running.
func (d *Driver) Stop(ctx context.Context, h *machine.Host) error {
	r, l, systemd, err := d.connect(ctx, h)
	if err != nil {
		return fmt.Errorf("stop host %s: %w", h.Name, err)
	}
	defer r.c.Close()
	if _, err := r.run(ctx, stopCmd(l, systemd), nil); err != nil {
		return fmt.Errorf("stop host %s: %w", h.Name, err)
	}
	return nil
}

// Remove stops berth and removes all that Create made on the host.
func (d *Driver) Remove(ctx context.Context, h *machine.Host, force bool) error {
	r, l, _, err := d.connect(ctx, h)
	if err != nil {
		return fmt.Errorf("remove host %s: %w", h.Name, err)
	}
	defer r.c.Close()
	if err := teardown(ctx, r, l, force); err != nil {
		return fmt.Errorf("remove host %s: %w", h.Name, err)
	}
	return nil
}

// Status tells whether berth runs on the host.
func (d *Driver) Status(ctx context.Context, h *machine.Host) (machine.State, error) {
	r, l, systemd, err := d.connect(ctx, h)
	if err != nil {
		return "", fmt.Errorf("status of host %s: %w", h.Name, err)
	}
	defer r.c.Close()
	out, err := r.run(ctx, fmt.Sprintf("if [ ! -x %s ]; then echo missing; else %s; fi", quote(l.bin()), runningCmd(l, systemd)), nil)
	if err != nil {
		return "", fmt.Errorf("status of host %s: %w", h.Name, err)
	}
	switch strings.TrimSpace(out) {
	case "missing":
		return machine.StateMissing, nil
	case "running":
		return machine.StateRunning, nil
	default:
		return machine.StateStopped, nil
	}
}

// Exec runs cmd on the host over SSH, as the login user, and returns its
// exit code.
func (d *Driver) Exec(ctx context.Context, h *machine.Host, cmd []string, stdio machine.Stdio) (int, error) {
	r, _, _, err := d.connect(ctx, h)
	if err != nil {
		return -1, fmt.Errorf("exec on host %s: %w", h.Name, err)
	}
	defer r.c.Close()
	s, err := r.c.NewSession()
	if err != nil {
		return -1, fmt.Errorf("exec on host %s: open an SSH session: %w", h.Name, err)
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = stdio.In, stdio.Out, stdio.Err
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	line := quoteAll(cmd)
	if len(cmd) == 0 {
		line = "exec \"${SHELL:-/bin/sh}\" -l"
	}
	err = s.Run(line)
	var ee *xssh.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitStatus(), nil
	case ctx.Err() != nil:
		return -1, ctx.Err()
	case err != nil:
		return -1, fmt.Errorf("exec on host %s: %w", h.Name, err)
	}
	return 0, nil
}

// HostFor is the record of the host spec would make, with no more than
// the options give: enough for Remove with force to clear what a Create
// that was cut short (the CLI killed) left on the host.
func HostFor(spec machine.Spec) (*machine.Host, error) {
	if err := checkName(spec.Name); err != nil {
		return nil, err
	}
	o, err := parseOptions(spec.Options)
	if err != nil {
		return nil, err
	}
	return &machine.Host{Name: spec.Name, Driver: DriverName, Cluster: spec.Cluster, Role: spec.Role, Labels: spec.Labels,
		Local: recordOf(o, newLayout(spec.Name), false)}, nil
}

// recordOf is Host.Local: how to reach the host again and where its
// parts are.
func recordOf(o options, l layout, systemd bool) map[string]string {
	return map[string]string{
		localAddr: o.addr, localUser: o.user, localKey: o.key, localKnownHosts: o.knownHosts,
		localInsecure: strconv.FormatBool(o.insecure), localDir: l.dir, localSystemd: strconv.FormatBool(systemd),
	}
}
