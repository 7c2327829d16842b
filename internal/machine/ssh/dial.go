package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// dial connects and logs in to the host of o. Each failure is one sentence
// that says what to do: a bad key file, nothing answering, an unknown or
// changed host key, a key the host refuses.
func (d *Driver) dial(ctx context.Context, o options) (*xssh.Client, error) {
	auth, closeAuth, err := d.authMethod(o)
	if err != nil {
		return nil, err
	}
	defer closeAuth()
	conf := &xssh.ClientConfig{User: o.user, Auth: []xssh.AuthMethod{auth}, Timeout: d.cfg.DialTimeout}
	if o.insecure {
		conf.HostKeyCallback = xssh.InsecureIgnoreHostKey() //nolint:gosec // the user opted out with --insecure-ignore-host-key
	} else {
		file := o.knownHosts
		if file == "" {
			if file, err = d.defaultKnownHosts(); err != nil {
				return nil, err
			}
		}
		cb, err := knownhosts.New(file)
		if err != nil {
			return nil, fmt.Errorf("read the known_hosts file %s (add the host with `ssh-keyscan -p PORT HOST >> %s`, or pass --%s): %w", file, file, OptInsecure, err)
		}
		conf.HostKeyCallback = checkHostKey(cb, file)
		conf.HostKeyAlgorithms = knownAlgorithms(cb, o.addr)
	}
	dialer := net.Dialer{Timeout: d.cfg.DialTimeout}
	dctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
	defer cancel()
	conn, err := dialer.DialContext(dctx, "tcp", o.addr)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s over SSH (is the address right and sshd running?): %w", o.addr, netCause(err))
	}
	// The handshake gets the same bound as the connect: a port that
	// accepts and never speaks SSH must not hang Create.
	stop := context.AfterFunc(dctx, func() { conn.Close() })
	c, chans, reqs, err := xssh.NewClientConn(conn, o.addr, conf)
	stop()
	if err != nil {
		conn.Close()
		return nil, handshakeError(o, err)
	}
	return xssh.NewClient(c, chans, reqs), nil
}

// hostKeyError is what checkHostKey refuses with, kept whole through the
// handshake's wrapping.
type hostKeyError struct{ msg string }

func (e *hostKeyError) Error() string { return e.msg }

// checkHostKey wraps the known_hosts callback so that an unknown and a
// changed key each say what happened and what to do.
func checkHostKey(cb xssh.HostKeyCallback, file string) xssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key xssh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		got := xssh.FingerprintSHA256(key)
		if len(ke.Want) == 0 {
			host, port, _ := net.SplitHostPort(hostname)
			return &hostKeyError{fmt.Sprintf("host %s is not in %s (its %s key is %s): check that fingerprint, then add it with `ssh-keyscan -p %s %s >> %s`, or pass --%s",
				hostname, file, key.Type(), got, port, host, file, OptInsecure)}
		}
		want := make([]string, 0, len(ke.Want))
		for _, k := range ke.Want {
			want = append(want, fmt.Sprintf("%s (%s:%d)", xssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
		}
		return &hostKeyError{fmt.Sprintf("the host key of %s CHANGED: %s knows %s, the host now offers %s %s; if the host was reinstalled, remove the old line (ssh-keygen -R) and add the new key, else someone may be intercepting the connection",
			hostname, file, strings.Join(want, ", "), key.Type(), got)}
	}
}

// knownAlgorithms lists the key types known_hosts holds for addr, so the
// host is asked for a key we can check rather than another of its keys
// (which would look like a changed key). Nil when none is known.
func knownAlgorithms(cb xssh.HostKeyCallback, addr string) []string {
	err := cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey{})
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		t := k.Key.Type()
		names := []string{t}
		if t == xssh.KeyAlgoRSA {
			names = []string{xssh.KeyAlgoRSASHA512, xssh.KeyAlgoRSASHA256, xssh.KeyAlgoRSA}
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				algos = append(algos, n)
			}
		}
	}
	return algos
}

// probeKey is a key no host has: offered to the known_hosts callback, it
// makes it list the keys it knows.
type probeKey struct{}

func (probeKey) Type() string                         { return "berth-probe" }
func (probeKey) Marshal() []byte                      { return []byte("berth-probe") }
func (probeKey) Verify([]byte, *xssh.Signature) error { return errors.New("probe key") }

func (d *Driver) defaultKnownHosts() (string, error) {
	home := d.cfg.Home
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("find ~/.ssh/known_hosts (pass --%s): %w", OptKnownHosts, err)
		}
	}
	return filepath.Join(home, ".ssh", "known_hosts"), nil
}

// authMethod is the key file of o, or else the ssh-agent's keys.
func (d *Driver) authMethod(o options) (xssh.AuthMethod, func(), error) {
	if o.key != "" {
		b, err := os.ReadFile(o.key)
		if err != nil {
			return nil, nil, fmt.Errorf("read the SSH key --%s %s: %w", OptKey, o.key, pathCause(err))
		}
		signer, err := xssh.ParsePrivateKey(b)
		var pass *xssh.PassphraseMissingError
		switch {
		case errors.As(err, &pass):
			return nil, nil, fmt.Errorf("the SSH key %s is protected by a passphrase: load it into ssh-agent (ssh-add %s) and leave out --%s", o.key, o.key, OptKey)
		case err != nil:
			return nil, nil, fmt.Errorf("the SSH key %s is not a private key berth can read (want an OpenSSH or PEM private key): %w", o.key, err)
		}
		return xssh.PublicKeys(signer), func() {}, nil
	}
	getenv := d.cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	sock := getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, nil, fmt.Errorf("no SSH key: pass --%s FILE, or run an ssh-agent (SSH_AUTH_SOCK is not set)", OptKey)
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, nil, fmt.Errorf("reach the ssh-agent at SSH_AUTH_SOCK=%s (or pass --%s FILE): %w", sock, OptKey, netCause(err))
	}
	return xssh.PublicKeysCallback(agent.NewClient(conn).Signers), func() { conn.Close() }, nil
}

// handshakeError says in one sentence why the SSH handshake failed.
func handshakeError(o options, err error) error {
	var hk *hostKeyError
	if errors.As(err, &hk) {
		return hk
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		how := "the keys of the ssh-agent"
		if o.key != "" {
			how = "the key " + o.key
		}
		return fmt.Errorf("%s@%s refused %s: put its public key in ~%s/.ssh/authorized_keys on the host, or pass the right --%s", o.user, o.addr, how, o.user, OptKey)
	}
	return fmt.Errorf("SSH handshake with %s failed (is it an SSH server?): %w", o.addr, err)
}

// netCause drops the Go dial prefix ("dial tcp 1.2.3.4:22: ") from err.
func netCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// pathCause drops the path from a *PathError, which the message names
// already.
func pathCause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
