package ssh

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// dockerDir is where the driver keeps what runs the host's Docker engine
// where no systemd does: a copy of berth, and the pidfile and log of
// dockerd's supervisor. It is not one host's (Docker is the host's, other
// software may use it, and Remove leaves it running); a host name cannot
// start with '.', so it never meets a host's directory.
const dockerDir = baseDir + "/.dockerd"

// dockerStartTimeout bounds the wait for a started engine to answer.
const dockerStartTimeout = 60 * time.Second

// installScript installs Docker with the host's package manager unless
// dockerd is there already; with no package manager berth knows it exits 3.
const installScript = `if command -v dockerd >/dev/null 2>&1; then exit 0; fi
if command -v apt-get >/dev/null 2>&1; then export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q --no-install-recommends docker.io ca-certificates
elif command -v dnf >/dev/null 2>&1; then dnf install -y docker
elif command -v yum >/dev/null 2>&1; then yum install -y docker
elif command -v zypper >/dev/null 2>&1; then zypper -n install docker
elif command -v apk >/dev/null 2>&1; then apk add docker
else echo "the host has no package manager berth knows (apt-get, dnf, yum, zypper or apk): install Docker on it yourself and leave out --install-docker"; exit 3
fi`

// installDocker installs Docker with the host's package manager (apt-get's
// docker.io on Debian and Ubuntu, dnf's or yum's docker elsewhere).
func installDocker(ctx context.Context, r *remote) error {
	out, err := r.run(ctx, installScript, nil)
	if err != nil && strings.Contains(out, "no package manager berth knows") {
		return errors.New(strings.TrimSpace(out))
	}
	return err
}

// startDocker starts the host's engine unless it answers already: with
// systemd its unit, else dockerd under berth's supervisor. An engine that
// exits at once or does not answer fails with the cause from its log; a
// supervisor started here is then stopped and its directory removed.
func startDocker(ctx context.Context, r *remote, l layout, systemd bool) error {
	if _, err := r.run(ctx, "docker info >/dev/null 2>&1", nil); err == nil {
		return nil
	}
	if systemd {
		if _, err := r.run(ctx, "systemctl enable --now docker", nil); err != nil {
			return fmt.Errorf("start the docker unit: %w", err)
		}
		return waitDocker(ctx, r, "", "journalctl -u docker")
	}
	bin, pidfile, log, script := dockerDir+"/berth", dockerDir+"/dockerd.pid", dockerDir+"/dockerd.log", dockerDir+"/run.sh"
	status := superviseCmd(bin, pidfile, "--status")
	if out, _ := r.run(ctx, fmt.Sprintf("if [ -x %s ]; then %s; fi", quote(bin), status), nil); strings.TrimSpace(out) == "running" {
		// An earlier host's supervisor runs dockerd (still starting, or
		// restarting it): not this Create's to replace or undo.
		return waitDocker(ctx, r, "", log)
	}
	run := fmt.Sprintf("#!/bin/sh\n# made by berth machine create --install-docker: the host's dockerd, under berth's supervisor.\nexec %s --log %s -- dockerd\n",
		superviseCmd(bin, pidfile), quote(log))
	// A fresh log: the exits an old one counts are not this start's.
	setup := fmt.Sprintf("mkdir -p -m 700 %s && cp %s %s && : > %s && cat > %s", quote(dockerDir), quote(l.bin()), quote(bin), quote(log), quote(script))
	if _, err := r.run(ctx, setup, strings.NewReader(run)); err != nil {
		return fmt.Errorf("set up dockerd's supervisor in %s: %w", dockerDir, err)
	}
	err := func() error {
		if _, err := r.run(ctx, detach(script, status), nil); err != nil {
			return fmt.Errorf("start dockerd's supervisor: %w", err)
		}
		// No "see the log": a failed start removes it with the rest.
		return waitDocker(ctx, r, log, "")
	}()
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 45*time.Second)
		defer cancel()
		if _, cerr := r.run(cctx, superviseCmd(bin, pidfile, "--stop")+"; rm -rf "+quote(dockerDir), nil); cerr != nil {
			err = fmt.Errorf("%w (and stopping it failed: %v)", err, cerr)
		}
	}
	return err
}

// waitDocker waits until `docker info` answers. log, when given, is the
// supervisor's log: dockerd that exited twice fails at once with its last
// words. where, when given, says where to look for more.
func waitDocker(ctx context.Context, r *remote, log, where string) error {
	ctx, cancel := context.WithTimeout(ctx, dockerStartTimeout)
	defer cancel()
	see := ""
	if where != "" {
		see = " (see " + where + ")"
	}
	check := "docker info >/dev/null 2>&1 && echo up"
	if log != "" {
		check += fmt.Sprintf(` || { [ "$(grep -c %s %s)" -ge 2 ] && echo dead; }; true`, quote(exitedPattern), quote(log))
	}
	for {
		out, err := r.run(ctx, check, nil)
		switch strings.TrimSpace(out) {
		case "up":
			return nil
		case "dead":
			tail, _ := r.run(ctx, "tail -n 40 "+quote(log), nil)
			return fmt.Errorf("dockerd exits as soon as it starts: %s%s", dockerdCause(tail), see)
		}
		if err != nil && ctx.Err() == nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the Docker engine did not answer within %s%s", dockerStartTimeout, see)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// dockerdCause is the line of dockerd's log that says why it stopped:
// its last "failed to start daemon" or fatal line, else its last error.
func dockerdCause(log string) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	for _, want := range []string{"failed to start daemon", "level=fatal", "level=error"} {
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.Contains(lines[i], want) {
				return clip(strings.TrimSpace(lines[i]), 400)
			}
		}
	}
	return lastErrors(log)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
