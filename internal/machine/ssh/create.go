package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/machine"
)

// The keys of Host.Local.
const (
	localAddr       = "addr"
	localUser       = "user"
	localKey        = "key"
	localKnownHosts = "known_hosts"
	localInsecure   = "insecure"
	localDir        = "dir"
	localSystemd    = "systemd"
)

// Create provisions spec's host: connect, check its platform, copy berth,
// install Docker when asked, start berth and wait until the node is ready.
// A failed step is named in the error, and what was made is removed.
func (d *Driver) Create(ctx context.Context, spec machine.Spec, progress machine.Progress) (_ *machine.Host, err error) {
	if err := d.Check(spec); err != nil {
		return nil, err
	}
	o, _ := parseOptions(spec.Options)
	step := func(s string) {
		if progress != nil {
			progress(spec.Name, s)
		}
	}
	var cur string
	begin := func(s string) { cur = s; step(s) }
	defer func() {
		if err != nil {
			err = fmt.Errorf("create host %s: %s: %w", spec.Name, cur, err)
		}
	}()

	begin("connect to " + o.addr)
	c, err := d.dial(ctx, o)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r := &remote{c: c, sudo: o.user != "root"}

	begin("check the host")
	ip, err := d.checkHost(ctx, r, o)
	if err != nil {
		return nil, err
	}
	l := newLayout(spec.Name)
	// One command claims the directory, so two creates of a name cannot
	// both go on.
	if _, err := r.run(ctx, "mkdir -p "+baseDir+" && mkdir -m 700 "+quote(l.dir), nil); err != nil {
		if strings.Contains(err.Error(), "exists") {
			return nil, fmt.Errorf("%w: %s on %s already has %s (remove that host first: berth machine rm -f %s)", machine.ErrExists, spec.Name, o.addr, l.dir, spec.Name)
		}
		return nil, err
	}
	systemd := hasSystemd(ctx, r)
	defer func() {
		if err != nil {
			// A fresh context: the caller's may be what ended Create.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if cerr := teardown(cctx, r, l, true); cerr != nil {
				err = fmt.Errorf("%w (and removing what was made failed: %v; run berth machine rm -f %s)", err, cerr, spec.Name)
			}
		}
	}()

	begin("copy berth")
	if err := d.copyBinary(ctx, r, l); err != nil {
		return nil, err
	}

	if o.installDocker {
		begin("install docker")
		if err := installDocker(ctx, r); err != nil {
			return nil, err
		}
		begin("start docker")
		if err := startDocker(ctx, r, l, systemd); err != nil {
			return nil, err
		}
	}

	begin("start berth")
	if err := start(ctx, r, l, spec, ip, systemd); err != nil {
		return nil, err
	}

	begin("wait until the node is ready")
	h := &machine.Host{
		Name: spec.Name, Driver: DriverName, Cluster: spec.Cluster, Role: spec.Role, Labels: spec.Labels,
		Address: ip, Created: time.Now().UTC(),
		Local: recordOf(o, l, systemd),
	}
	if err := d.waitReady(ctx, r, l, spec, systemd, h); err != nil {
		return nil, err
	}
	if spec.Role == machine.RoleAgent {
		if _, err := r.run(ctx, "command -v docker >/dev/null", nil); err == nil {
			// The docker CLI reaches a remote engine over SSH itself.
			h.DockerHost = "ssh://" + o.user + "@" + o.addr
		}
	}
	return h, nil
}

// checkHost checks that the host runs the OS and architecture of this
// berth binary, and returns the host's own address: where it took the SSH
// connection (SSH_CONNECTION), which is where berth on it listens.
func (d *Driver) checkHost(ctx context.Context, r *remote, o options) (string, error) {
	out, err := (&remote{c: r.c}).run(ctx, `echo "$SSH_CONNECTION"; uname -sm`, nil)
	if err != nil {
		return "", fmt.Errorf("run uname on the host: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		return "", fmt.Errorf("the host answered %q to uname -sm", out)
	}
	if err := checkPlatform(lines[len(lines)-1], runtime.GOOS, runtime.GOARCH); err != nil {
		return "", err
	}
	if r.sudo {
		if _, err := (&remote{c: r.c}).run(ctx, "sudo -n true", nil); err != nil {
			return "", fmt.Errorf("%s may not run commands as root with sudo -n (berth installs a binary and a service): log in as root, or allow %s sudo without a password: %w", o.user, o.user, err)
		}
	}
	if f := strings.Fields(lines[0]); len(f) == 4 && net.ParseIP(f[2]) != nil {
		return f[2], nil
	}
	host, _, _ := net.SplitHostPort(o.addr)
	return host, nil
}

// checkPlatform refuses a host whose `uname -sm` is not goos/goarch, the
// platform of the berth binary that would be copied there.
func checkPlatform(uname, goos, goarch string) error {
	osName, arch := platform(uname)
	if osName == goos && arch == goarch {
		return nil
	}
	return fmt.Errorf("the host runs %s (%s/%s) and this berth binary is for %s/%s: run a berth built for %s/%s (GOOS=%s GOARCH=%s go build ./cmd/berth)",
		uname, osName, arch, goos, goarch, osName, arch, osName, arch)
}

// platform maps `uname -sm` to GOOS and GOARCH.
func platform(uname string) (string, string) {
	f := strings.Fields(uname)
	if len(f) != 2 {
		return strings.ToLower(uname), "unknown"
	}
	osName := strings.ToLower(f[0])
	arch := map[string]string{
		"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
		"i386": "386", "i686": "386", "armv7l": "arm", "armv6l": "arm",
		"ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
	}[f[1]]
	if arch == "" {
		arch = f[1]
	}
	return osName, arch
}

// hasSystemd tells whether systemd runs the host.
func hasSystemd(ctx context.Context, r *remote) bool {
	_, err := r.run(ctx, "test -d /run/systemd/system && command -v systemctl >/dev/null", nil)
	return err == nil
}

// copyBinary streams this berth binary to the host (no SFTP needed).
func (d *Driver) copyBinary(ctx context.Context, r *remote, l layout) error {
	bin := d.cfg.Binary
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return fmt.Errorf("find this berth binary: %w", err)
		}
	}
	f, err := os.Open(bin)
	if err != nil {
		return fmt.Errorf("open the berth binary: %w", err)
	}
	defer f.Close()
	tmp := l.bin() + ".part"
	_, err = r.run(ctx, fmt.Sprintf("cat > %s && chmod 755 %s && mv %s %s", quote(tmp), quote(tmp), quote(tmp), quote(l.bin())), f)
	return err
}

// start writes the run script, the join token and (with systemd) the
// unit, and starts berth under its supervisor.
func start(ctx context.Context, r *remote, l layout, spec machine.Spec, ip string, systemd bool) error {
	if _, err := r.run(ctx, "cat > "+quote(l.script()), strings.NewReader(runScript(l, berthArgs(l, spec, ip)))); err != nil {
		return fmt.Errorf("write %s: %w", l.script(), err)
	}
	if spec.Join.Token != "" {
		// Through stdin into a file only root reads: never on a command
		// line, the driver's or berth's.
		if _, err := r.run(ctx, "umask 077 && cat > "+quote(l.tokenFile()), strings.NewReader(spec.Join.Token+"\n")); err != nil {
			return fmt.Errorf("write the join token: %w", err)
		}
	}
	if systemd {
		if _, err := r.run(ctx, "cat > "+quote(l.unitPath()), strings.NewReader(unitFile(l))); err != nil {
			return fmt.Errorf("write the systemd unit: %w", err)
		}
		_, err := r.run(ctx, "systemctl daemon-reload && systemctl enable --now "+quote(l.unit()), nil)
		return err
	}
	return startSupervised(ctx, r, l)
}

// startSupervised runs the script (so berth's supervisor) detached in a
// session of its own, so it outlives the SSH connection, and waits until
// the supervisor runs.
func startSupervised(ctx context.Context, r *remote, l layout) error {
	_, err := r.run(ctx, detach(l.script(), l.superviseCmd("--status")), nil)
	return err
}

// detach is a shell command that starts `sh script` in a session of its
// own, detached from the SSH connection, and waits up to 10 s until status
// (a `machine-supervise --status`) prints running.
func detach(script, status string) string {
	return fmt.Sprintf(`cd / && setsid nohup sh %s >/dev/null 2>&1 </dev/null &
for i in $(seq 100); do [ "$(%s)" = running ] && exit 0; sleep 0.1; done
echo 'the supervisor did not start within 10s'; exit 1`, quote(script), status)
}

// waitReady waits until berth on the host says it is ready in its log; a
// first manager's admin token and CA go into h.
func (d *Driver) waitReady(ctx context.Context, r *remote, l layout, spec machine.Spec, systemd bool, h *machine.Host) error {
	ready := []string{"agent registered"}
	if spec.Role == machine.RoleManager {
		ready = []string{"manager listening", "leading the cluster"}
		if spec.Join.Addr != "" {
			ready[1] = "this manager is a voter of the cluster"
		}
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ReadyTimeout)
	defer cancel()
	var greps []string
	for _, s := range ready {
		greps = append(greps, "grep -qF "+quote(s)+" "+quote(l.log()))
	}
	// Ready, or "dead" once berth exited twice: a refused token or a port
	// in use will not mend by waiting (network failures berth retries
	// itself, without exiting).
	if spec.Role == machine.RoleManager && spec.Join.Addr == "" {
		// berth writes the file whole (one write of one line).
		greps = append(greps, "grep -q '^BERTHADM-' "+quote(l.adminToken()))
	}
	check := fmt.Sprintf("if %s; then echo ready; elif [ \"$(grep -c %s %s)\" -ge 2 ]; then echo dead; fi",
		strings.Join(greps, " && "), quote(exitedPattern), quote(l.log()))
	for {
		out, err := r.run(ctx, check, nil)
		if err == nil && strings.TrimSpace(out) == "ready" {
			break
		}
		if err == nil && strings.TrimSpace(out) == "dead" {
			logTail, _ := r.run(ctx, "tail -n 20 "+quote(l.log()), nil)
			return fmt.Errorf("berth on the host keeps exiting; its log (%s) ends: %s", l.log(), lastErrors(logTail))
		}
		select {
		case <-ctx.Done():
			logTail, _ := r.run(context.WithoutCancel(ctx), "tail -n 20 "+quote(l.log()), nil)
			if parent.Err() != nil {
				return fmt.Errorf("stopped waiting (%w); berth's log (%s) ends: %s", parent.Err(), l.log(), lastErrors(logTail))
			}
			return fmt.Errorf("berth on the host was not ready within %s; its log (%s) ends: %s", d.cfg.ReadyTimeout, l.log(), lastErrors(logTail))
		case <-time.After(500 * time.Millisecond):
		}
	}
	if spec.Role == machine.RoleManager && spec.Join.Addr == "" {
		out, err := r.run(ctx, "cat "+quote(l.adminToken()), nil)
		if err != nil {
			return fmt.Errorf("read the admin token: %w", err)
		}
		h.AdminToken = strings.TrimSpace(out)
		if !strings.HasPrefix(h.AdminToken, "BERTHADM-") {
			return errors.New("the new manager printed no admin token")
		}
		ca, err := r.run(ctx, "cat "+quote(l.data()+"/pki/ca.crt"), nil)
		if err != nil {
			return fmt.Errorf("read the cluster CA: %w", err)
		}
		h.CACert = []byte(ca)
	}
	// Ready: the token and the admin token have done their work.
	if _, err := r.run(ctx, "rm -f "+quote(l.tokenFile())+" "+quote(l.adminToken()), nil); err != nil {
		return fmt.Errorf("remove the join token from the host: %w", err)
	}
	return nil
}

// exitedPattern matches the line berth's supervisor logs each time its
// command exits (a grep pattern).
const exitedPattern = "supervisor: .* exited ("

// lastErrors is what a berth log says last: its last "error:" line, or
// else its tail without the supervisor's lines and repeats.
func lastErrors(log string) string {
	var keep []string
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if strings.Contains(line, " supervisor: ") || line == "" {
			continue
		}
		if len(keep) > 0 && keep[len(keep)-1] == line {
			continue
		}
		keep = append(keep, line)
	}
	if len(keep) == 0 {
		return "(nothing)"
	}
	// berth's own last words, when it gave any, say it best.
	for i := len(keep) - 1; i >= 0; i-- {
		if strings.HasPrefix(keep[i], "error: ") {
			return keep[i]
		}
	}
	return tail(strings.Join(keep, "\n"), 3)
}
