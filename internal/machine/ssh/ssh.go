// Package ssh is the machine driver for an existing Linux host reached over
// SSH (golang.org/x/crypto/ssh). Create copies the running berth binary to
// the host, runs berth there under berth's own supervisor (`berth
// machine-supervise`, package machine/supervise: it restarts berth when it
// dies), itself run by systemd where systemd runs, and waits until the
// node is ready.
//
// Options (machine.Spec.Options; the keys are the `berth machine create`
// flags of the same name):
//
//	ssh-addr                  host[:port] (port 22 by default); required
//	ssh-user                  user to log in as (default root); not root: commands go through `sudo -n`
//	ssh-key                   private key file (default: the keys of the ssh-agent at $SSH_AUTH_SOCK)
//	known-hosts               known_hosts file (default ~/.ssh/known_hosts)
//	insecure-ignore-host-key  "true": accept any host key (an opt-out, never the default)
//	install-docker            "true": install Docker with the host's package manager and start it
//
// Create's steps, each reported to Progress: connect (known_hosts checked
// unless opted out), check the host (`uname -sm` must match this binary's
// GOOS/GOARCH; a user other than root must have `sudo -n`), copy berth
// (streamed through `cat`, no SFTP), install docker and start docker (when
// asked: apt-get's docker.io, or dnf's, yum's, zypper's or apk's docker;
// started by systemd, else by berth's supervisor), start berth, wait until
// the node is ready (its log says "agent registered", or for a manager
// that it leads or is a voter; a berth that exits twice fails at once
// with its last error). A failed step is named in the error and
// everything made so far is removed.
//
// Everything the driver makes on a host lives under one directory of its
// own, /var/lib/berth-machine/NAME (the binary, berth's data, its log,
// the supervisor's pidfile and run script), plus the systemd unit
// berth-machine-NAME.service where systemd runs: Remove takes exactly
// those away. Docker, when install-docker put it there, stays (and so does
// /var/lib/berth-machine/.dockerd, which runs it where no systemd does):
// it is the host's package, and other software may use it.
//
// The host's address (Host.Address, where berth listens) is the address
// the host took the SSH connection on ($SSH_CONNECTION), so it is the
// host's own even when --ssh-addr is a name.
//
// The join token reaches the host through stdin into a 0600 file in the
// host's directory, which berth reads with --token-file (so it is on no
// command line, berth's or the driver's, and no local user sees it in
// /proc/PID/cmdline) and which is removed once the node is ready (after
// joining, berth needs no token). A first manager writes its admin token
// to a 0600 file there (--admin-token-file), read and removed the same way.
package ssh

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/machine"
)

// The option keys of machine.Spec.Options this driver reads.
const (
	OptAddr          = "ssh-addr"
	OptUser          = "ssh-user"
	OptKey           = "ssh-key"
	OptKnownHosts    = "known-hosts"
	OptInsecure      = "insecure-ignore-host-key"
	OptInstallDocker = "install-docker"
)

// DriverName is the driver's name, as --driver takes it.
const DriverName = "ssh"

// Config tunes the driver; the zero value is ready to use.
type Config struct {
	// Binary is the berth binary copied to hosts (default: os.Executable).
	Binary string
	// DialTimeout bounds the TCP connect and SSH handshake (default 10s).
	DialTimeout time.Duration
	// ReadyTimeout bounds the wait for berth on a new host to be ready
	// (default 60s).
	ReadyTimeout time.Duration
	// Home is the user's home directory, for ~/.ssh/known_hosts (default
	// os.UserHomeDir).
	Home string
	// Getenv reads SSH_AUTH_SOCK (default os.Getenv).
	Getenv func(string) string
}

// Driver is the ssh machine driver.
type Driver struct {
	cfg Config
}

var _ machine.Driver = (*Driver)(nil)

// New returns the ssh driver.
func New(cfg Config) *Driver {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 60 * time.Second
	}
	return &Driver{cfg: cfg}
}

// Name is "ssh".
func (d *Driver) Name() string { return DriverName }

// options are Spec.Options, checked.
type options struct {
	addr          string // host:port
	user          string
	key           string
	knownHosts    string
	insecure      bool
	installDocker bool
}

var knownOptions = map[string]bool{OptAddr: true, OptUser: true, OptKey: true, OptKnownHosts: true, OptInsecure: true, OptInstallDocker: true}

// parseOptions checks the driver's options; an error names the option.
func parseOptions(m map[string]string) (options, error) {
	for k := range m {
		if !knownOptions[k] {
			return options{}, fmt.Errorf("the ssh driver has no option %q (it takes --%s, --%s, --%s, --%s, --%s, --%s)",
				k, OptAddr, OptUser, OptKey, OptKnownHosts, OptInsecure, OptInstallDocker)
		}
	}
	o := options{user: m[OptUser], key: m[OptKey], knownHosts: m[OptKnownHosts]}
	addr := strings.TrimSpace(m[OptAddr])
	if addr == "" {
		return o, fmt.Errorf("the ssh driver needs --%s, the host's address (host or host:port)", OptAddr)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "22")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || strings.ContainsAny(host, " /") {
		return o, fmt.Errorf("--%s %q is not host or host:port", OptAddr, m[OptAddr])
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return o, fmt.Errorf("--%s %q: the port must be a number from 1 to 65535", OptAddr, m[OptAddr])
	}
	o.addr = addr
	if o.user == "" {
		o.user = "root"
	}
	if strings.ContainsAny(o.user, " \t\n'\"$;") {
		return o, fmt.Errorf("--%s %q is not a user name", OptUser, o.user)
	}
	for _, b := range []struct {
		key string
		dst *bool
	}{{OptInsecure, &o.insecure}, {OptInstallDocker, &o.installDocker}} {
		v, ok := m[b.key]
		if !ok || v == "" {
			continue
		}
		if *b.dst, err = strconv.ParseBool(v); err != nil {
			return o, fmt.Errorf("--%s takes true or false, not %q", b.key, v)
		}
	}
	return o, nil
}

// Check validates spec without making anything or connecting.
func (d *Driver) Check(spec machine.Spec) error {
	if err := checkName(spec.Name); err != nil {
		return err
	}
	switch spec.Role {
	case machine.RoleAgent:
		if spec.Join.Addr == "" || spec.Join.Token == "" {
			return errors.New("an agent host needs a manager's address and a worker token to join")
		}
	case machine.RoleManager:
		if (spec.Join.Addr == "") != (spec.Join.Token == "") {
			return errors.New("a manager joins with both a manager's address and a manager token, or neither to start a cluster")
		}
	default:
		return fmt.Errorf("role %q is not agent or manager", spec.Role)
	}
	for k, v := range spec.Labels {
		if k == "" || strings.ContainsAny(k+v, "=\n\r\x00'") {
			return fmt.Errorf("invalid label %q=%q: want KEY=VALUE without quotes or newlines", k, v)
		}
	}
	_, err := parseOptions(spec.Options)
	return err
}

// checkName allows names that are safe in a path, a unit name and a shell
// word: letters, digits, '-', '_' and '.', starting with a letter or digit.
func checkName(name string) error {
	if name == "" || len(name) > 63 {
		return fmt.Errorf("host name %q must be 1 to 63 characters", name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_' || r == '.')
		if !ok {
			return fmt.Errorf("host name %q may hold only letters, digits, '-', '_' and '.', and start with a letter or digit", name)
		}
	}
	return nil
}
