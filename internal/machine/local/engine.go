package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/machine/supervise"
)

// engineArgs is the host's dockerd: every path its own, its own config
// file (the machine's daemon.json may name a data root of its own), and
// its own containerd namespaces in case it shares the machine's
// containerd. Its bridge and iptables rules are the namespace's own, so
// the defaults serve: published ports answer on the host's address.
func (d *Driver) engineArgs(h *machine.Host, p paths) []string {
	ns := h.Local[keyNetns]
	return []string{d.cfg.Dockerd,
		"--config-file", p.engineConfig(),
		"--data-root", p.engineData(),
		"--exec-root", p.engineExec(),
		"--pidfile", p.enginePid(),
		"--host", p.dockerHost(),
		"--containerd-namespace", ns,
		"--containerd-plugins-namespace", ns + "-plugins",
	}
}

// startEngine starts the host's dockerd under a supervisor in its
// namespace and waits until it answers.
func (d *Driver) startEngine(ctx context.Context, h *machine.Host) error {
	p, err := d.hostPaths(h)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.engineConfig(), []byte("{}\n"), 0o600); err != nil {
		return err
	}
	dockerd, err := exec.LookPath(d.cfg.Dockerd)
	if err != nil {
		return fmt.Errorf("no Docker engine (dockerd) on this machine: install Docker, or make manager hosts only: %w", err)
	}
	args := d.engineArgs(h, p)
	args[0] = dockerd
	env := hostEnv(h, p)
	if _, err := supervise.Spawn(ctx, d.cfg.Binary, nsenter(h), p.engineSupPid(), p.engineLog(), env, args); err != nil {
		return err
	}
	return waitFor(ctx, d.cfg.ReadyTimeout, "the engine to answer on "+p.engineSock()+" (see "+p.engineLog()+")", func() error {
		return pingEngine(ctx, p.engineSock())
	})
}

// pingEngine asks the engine at sock for /_ping.
func pingEngine(ctx context.Context, sock string) error {
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", sock)
		}}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("engine answered %s", resp.Status)
	}
	return nil
}

// copyImages copies images from the machine's engine into the host's
// (docker save | docker load): until images travel through the cluster.
func (d *Driver) copyImages(ctx context.Context, h *machine.Host, images []string) error {
	p, err := d.hostPaths(h)
	if err != nil {
		return err
	}
	save := exec.CommandContext(ctx, d.cfg.Docker, append([]string{"save"}, images...)...)
	save.Env = withDockerHost(d.cfg.DockerHost)
	load := exec.CommandContext(ctx, d.cfg.Docker, "load", "--quiet")
	load.Env = withDockerHost(p.dockerHost())
	pipe, err := save.StdoutPipe()
	if err != nil {
		return err
	}
	load.Stdin = pipe
	var saveErr, loadErr strings.Builder
	save.Stderr, load.Stderr = &saveErr, &loadErr
	load.Stdout = io.Discard
	if err := save.Start(); err != nil {
		return fmt.Errorf("run docker save: %w", err)
	}
	lerr := load.Run()
	serr := save.Wait()
	if serr != nil {
		return fmt.Errorf("docker save %s on this machine: %s", strings.Join(images, " "), firstLine(saveErr.String(), serr))
	}
	if lerr != nil {
		return fmt.Errorf("docker load into host %s: %s", h.Name, firstLine(loadErr.String(), lerr))
	}
	return nil
}

func withDockerHost(host string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_HOST=") {
			env = append(env, kv)
		}
	}
	if host != "" {
		env = append(env, "DOCKER_HOST="+host)
	}
	return env
}

func firstLine(s string, err error) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return err.Error()
	}
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// waitFor polls cond until it succeeds, ctx ends or timeout passes; the
// error says what it waited for and the last failure.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(timeout)
	wait := 20 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up waiting %s for %s: %w", timeout, what, err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(wait*2, 250*time.Millisecond)
	}
}
