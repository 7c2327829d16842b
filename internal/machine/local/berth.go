package local

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/machine/supervise"
)

// keyJoin in Host.Local: the manager address berth joined through (never
// the token), so a restart after Stop needs nothing from the caller.
const keyJoin = "join"

// keyGCGrace in Host.Local: a manager's --registry-gc-grace, kept for its
// restarts.
const keyGCGrace = "registry-gc-grace"

// berthArgs is berth's command line in the host. The host has no hostname
// of its own (no UTS namespace), so its name goes in --name.
func (d *Driver) berthArgs(h *machine.Host, spec machine.Spec, first bool) []string {
	p := d.paths(h.Cluster, h.Name)
	if h.Role == machine.RoleManager {
		args := machine.ManagerArgs(d.cfg.Binary, h.Name, p.berthData(), h.Address)
		if g, err := time.ParseDuration(h.Local[keyGCGrace]); err == nil {
			args = machine.WithRegistryGCGrace(args, g)
		}
		if spec.Join.Addr != "" && first {
			args = machine.WithTokenFile(append(args, "--join", spec.Join.Addr), p.joinToken())
		}
		if spec.Join.Addr == "" && first {
			args = append(args, "--admin-token-file", p.adminToken())
		}
		return args
	}
	args := machine.AgentArgs(d.cfg.Binary, h.Name, p.berthData(), h.Address, h.Local[keyJoin], h.Labels)
	if first {
		args = machine.WithTokenFile(args, p.joinToken())
	}
	return args
}

func (d *Driver) startBerth(ctx context.Context, h *machine.Host, spec machine.Spec) error {
	remember(h, spec)
	return d.spawnBerth(ctx, h, spec)
}

// remember keeps in h.Local what berth's restarts need of spec.
func remember(h *machine.Host, spec machine.Spec) {
	h.Local[keyJoin] = spec.Join.Addr
	if spec.Role == machine.RoleManager && spec.RegistryGCGrace != 0 {
		h.Local[keyGCGrace] = spec.RegistryGCGrace.String()
	}
}

// spawnBerth starts berth under a supervisor in the host's namespace. An
// empty spec (a restart) gives berth no join flags.
func (d *Driver) spawnBerth(ctx context.Context, h *machine.Host, spec machine.Spec) error {
	p, err := d.hostPaths(h)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.berthData(), 0o700); err != nil {
		return err
	}
	first := spec.Name != ""
	if first && spec.Join.Token != "" {
		// Read by berth at start; removed once the node is ready.
		if err := os.WriteFile(p.joinToken(), []byte(spec.Join.Token+"\n"), 0o600); err != nil {
			return fmt.Errorf("write the join token: %w", err)
		}
	}
	args := d.berthArgs(h, spec, first)
	_, err = supervise.Spawn(ctx, d.cfg.Binary, nsenter(h), supervise.Options{Pidfile: p.berthPid(), Log: p.berthLog(), Args: args}, hostEnv(h, p))
	return err
}

// waitBerth waits until berth answers: a manager's API (the first one's
// with its new admin token, which Create hands back with the CA), an
// agent's registration in its log.
func (d *Driver) waitBerth(ctx context.Context, h *machine.Host, spec machine.Spec) error {
	p := d.paths(h.Cluster, h.Name)
	logHint := " (see " + p.berthLog() + ")"
	if h.Role == machine.RoleAgent {
		return waitFor(ctx, d.cfg.ReadyTimeout, "the agent to register"+logHint, func() error {
			if err := berthAlive(p); err != nil {
				return err
			}
			b, _ := os.ReadFile(p.berthLog())
			if !bytes.Contains(b, []byte("agent registered")) {
				return errors.New("not registered yet")
			}
			return nil
		})
	}
	caPath := filepath.Join(p.berthData(), "pki", "ca.crt")
	if spec.Join.Addr == "" {
		if err := waitFor(ctx, d.cfg.ReadyTimeout, "the manager's admin token"+logHint, func() error {
			if err := berthAlive(p); err != nil {
				return err
			}
			b, err := os.ReadFile(p.adminToken())
			if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
				return errors.New("no admin token yet")
			}
			h.AdminToken = strings.TrimSpace(string(b))
			return nil
		}); err != nil {
			return err
		}
		// Handed to the caller only: the cluster keeps its hash.
		os.Remove(p.adminToken())
	}
	return waitFor(ctx, d.cfg.ReadyTimeout, "the manager's API at "+machine.HostPort(h.Address, machine.APIPort)+logHint, func() error {
		if err := berthAlive(p); err != nil {
			return err
		}
		ca, err := os.ReadFile(caPath)
		if err != nil {
			return errors.New("no cluster CA yet")
		}
		if err := d.status(ctx, h, ca); err != nil {
			return err
		}
		h.CACert = nil
		if spec.Join.Addr == "" {
			h.CACert = ca
		}
		return nil
	})
}

// status asks the manager's API for /v1/status over TLS with the cluster
// CA. With the admin token it must succeed; without one (a joining
// manager: the caller holds the credential) an answer of any kind will do.
func (d *Driver) status(ctx context.Context, h *machine.Host, ca []byte) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return errors.New("the cluster CA is not PEM yet")
	}
	opts := []api.ClientOption{api.WithTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		api.WithTimeouts(2*time.Second, 0)}
	if h.AdminToken != "" {
		opts = append(opts, api.WithToken(h.AdminToken))
	}
	c := api.NewClient(machine.HostPort(h.Address, machine.APIPort), opts...)
	_, err := c.Status(ctx)
	var apiErr *api.Error
	if err != nil && h.AdminToken == "" && errors.As(err, &apiErr) {
		return nil
	}
	return err
}

// berthAlive fails once the supervisor is gone: no use waiting then.
func berthAlive(p paths) error {
	if !supervise.Running(p.berthPid()) {
		return fmt.Errorf("berth's supervisor is not running")
	}
	return nil
}
