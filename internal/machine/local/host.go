package local

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/machine/supervise"
	"github.com/berth-dev/berth/internal/types"
)

// Keys of Host.Local.
const (
	keyDir    = "dir"
	keyNetns  = "netns"
	keyVeth   = "veth"
	keyBridge = "bridge"
	keySubnet = "subnet"
	keyRoot   = "root"
)

// nameRE is a name of 1-32 lowercase letters, digits and dashes, bounded
// as types.BoundedRE explains.
var nameRE = types.NewBoundedRE(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`, 32)

// Check validates spec without making anything.
func (d *Driver) Check(spec machine.Spec) error {
	if !nameRE.MatchString(spec.Name) {
		return fmt.Errorf("invalid host name %q: use 1-32 lowercase letters, digits and dashes, e.g. agent-1", spec.Name)
	}
	if !nameRE.MatchString(spec.Cluster) {
		return fmt.Errorf("invalid cluster name %q: use 1-32 lowercase letters, digits and dashes, e.g. dev", spec.Cluster)
	}
	if spec.Role != machine.RoleAgent && spec.Role != machine.RoleManager {
		return fmt.Errorf("invalid role %q: want agent or manager", spec.Role)
	}
	for k := range spec.Options {
		if k != OptSubnet {
			return fmt.Errorf("the local driver has no option %q (it takes: %s)", k, OptSubnet)
		}
	}
	if s := spec.Options[OptSubnet]; s != "" {
		if _, err := parseSubnet(s); err != nil {
			return err
		}
	}
	for k, v := range spec.Labels {
		if k == "" || strings.ContainsAny(k+v, "=\n\x00") {
			return fmt.Errorf("invalid label %q=%q: want KEY=VALUE, e.g. zone=a", k, v)
		}
	}
	if (spec.Join.Addr == "") != (spec.Join.Token == "") {
		return errors.New("a host joins with both a manager's address and a token, or (the first manager) with neither")
	}
	if spec.Role == machine.RoleAgent && spec.Join.Addr == "" {
		return errors.New("an agent host needs a manager to join: give its address and a worker token")
	}
	p := d.paths(spec.Cluster, spec.Name)
	// A unix socket's path has at most 107 bytes; containerd's is the longest.
	if n := len(p.containerdSock()); n > 107 {
		return fmt.Errorf("the machines directory %s is too deep for the engine's sockets (%d bytes, at most 107): choose a shorter one", d.cfg.Root, n)
	}
	if _, err := os.Stat(p.dir); err == nil {
		return fmt.Errorf("host %s of cluster %s: %w", spec.Name, spec.Cluster, machine.ErrExists)
	}
	if _, err := os.Stat("/run/netns/" + netnsName(spec.Cluster, spec.Name)); err == nil {
		return fmt.Errorf("network namespace %s: %w", netnsName(spec.Cluster, spec.Name), machine.ErrExists)
	}
	return nil
}

// preflight says, before anything is made, what this machine lacks.
func preflight(role machine.Role) error {
	if os.Geteuid() != 0 {
		return errors.New("the local driver makes network namespaces, bridges and iptables rules, which needs root: run berth as root (e.g. with sudo)")
	}
	tools := []string{"ip", "iptables", "nsenter"}
	if role == machine.RoleAgent {
		tools = append(tools, "dockerd", "docker")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the local driver needs %s, which is not on PATH: install iproute2, iptables, util-linux and Docker", tool)
		}
	}
	return nil
}

// paths are a host's files, all under its directory.
type paths struct{ dir string }

func (d *Driver) paths(cluster, name string) paths {
	return paths{filepath.Join(d.cfg.Root, cluster, name)}
}

func (p paths) berthData() string    { return filepath.Join(p.dir, "berth") }
func (p paths) berthPid() string     { return filepath.Join(p.dir, "berth.pid") }
func (p paths) berthLog() string     { return filepath.Join(p.dir, "berth.log") }
func (p paths) adminToken() string   { return filepath.Join(p.dir, "admin-token") }
func (p paths) joinToken() string    { return filepath.Join(p.dir, machine.JoinTokenFile) }
func (p paths) engineData() string   { return filepath.Join(p.dir, "docker") }
func (p paths) engineExec() string   { return filepath.Join(p.dir, "run") }
func (p paths) enginePid() string    { return filepath.Join(p.dir, "dockerd.pid") }
func (p paths) engineSupPid() string { return filepath.Join(p.dir, "engine.pid") }
func (p paths) engineLog() string    { return filepath.Join(p.dir, "engine.log") }
func (p paths) engineSock() string   { return filepath.Join(p.dir, "docker.sock") }
func (p paths) engineConfig() string { return filepath.Join(p.dir, "daemon.json") }
func (p paths) containerdSock() string {
	return filepath.Join(p.engineExec(), "containerd", "containerd.sock")
}
func (p paths) dockerHost() string { return "unix://" + p.engineSock() }

// Create makes the host: its network, namespace, engine (agents) and berth.
func (d *Driver) Create(ctx context.Context, spec machine.Spec, progress machine.Progress) (h *machine.Host, err error) {
	if err := d.Check(spec); err != nil {
		return nil, err
	}
	if err := preflight(spec.Role); err != nil {
		return nil, err
	}
	step := func(s string) {
		if progress != nil {
			progress(spec.Name, s)
		}
	}
	p := d.paths(spec.Cluster, spec.Name)
	if err := os.MkdirAll(filepath.Dir(p.dir), 0o700); err != nil {
		return nil, fmt.Errorf("make the cluster's directory: %w", err)
	}
	if err := os.Mkdir(p.dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("host %s of cluster %s: %w", spec.Name, spec.Cluster, machine.ErrExists)
		}
		return nil, fmt.Errorf("make the host's directory: %w", err)
	}
	host := &machine.Host{
		Name: spec.Name, Driver: d.Name(), Cluster: spec.Cluster, Role: spec.Role, Labels: spec.Labels,
		Created: time.Now().UTC(),
		Local: map[string]string{keyDir: p.dir, keyRoot: d.cfg.Root, keyNetns: netnsName(spec.Cluster, spec.Name),
			keyVeth: d.vethName(spec.Cluster, spec.Name)},
	}
	h = host
	defer func() {
		if err != nil {
			// Undo on a context of its own: ctx may be what ended. host,
			// not h: a failing return has already set h to nil.
			_ = d.Remove(context.WithoutCancel(ctx), host, true)
			h = nil
		}
	}()

	step("set up the cluster's network")
	n, addr, err := d.joinNetwork(ctx, spec.Cluster, spec.Name, spec.Options[OptSubnet])
	if err != nil {
		return nil, fmt.Errorf("set up the cluster's network: %w", err)
	}
	h.Address = addr.String()
	h.Local[keyBridge], h.Local[keySubnet] = n.Bridge, n.Subnet

	step("create the network namespace")
	if err := d.makeNamespace(ctx, h, addr, netip.MustParsePrefix(n.Subnet)); err != nil {
		return nil, fmt.Errorf("create the network namespace: %w", err)
	}
	if spec.Role == machine.RoleAgent {
		step("start the engine")
		if err := d.startEngine(ctx, h); err != nil {
			return nil, fmt.Errorf("start the engine: %w", err)
		}
		h.DockerHost = p.dockerHost()
		if len(spec.Images) > 0 {
			step("copy images")
			if err := d.copyImages(ctx, h, spec.Images); err != nil {
				return nil, fmt.Errorf("copy images: %w", err)
			}
		}
	}
	step("start berth")
	if err := d.startBerth(ctx, h, spec); err != nil {
		return nil, fmt.Errorf("start berth: %w", err)
	}
	step("wait for berth")
	if err := d.waitBerth(ctx, h, spec); err != nil {
		return nil, fmt.Errorf("wait for berth: %w", err)
	}
	// Joined: berth needs no token from now on.
	if err := os.Remove(p.joinToken()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove the join token: %w", err)
	}
	return h, nil
}

// hostPaths returns the paths of a recorded host, refusing a record that
// does not point into this driver's root (Remove deletes what it names).
func (d *Driver) hostPaths(h *machine.Host) (paths, error) {
	if h == nil || h.Local == nil {
		return paths{}, fmt.Errorf("host: %w", machine.ErrNotFound)
	}
	want := d.paths(h.Cluster, h.Name)
	if h.Local[keyDir] != want.dir || !nameRE.MatchString(h.Name) || !nameRE.MatchString(h.Cluster) {
		return paths{}, fmt.Errorf("host %s is not one of this driver's (its directory is not %s)", h.Name, want.dir)
	}
	return want, nil
}

// Start runs a stopped host's engine and berth again.
func (d *Driver) Start(ctx context.Context, h *machine.Host) error {
	p, err := d.hostPaths(h)
	if err != nil {
		return err
	}
	if st, _ := d.Status(ctx, h); st == machine.StateMissing {
		return fmt.Errorf("host %s is gone (its namespace or directory is missing): remove it with rm -f", h.Name)
	}
	if h.Role == machine.RoleAgent && !supervise.Running(p.engineSupPid()) {
		if err := d.startEngine(ctx, h); err != nil {
			return fmt.Errorf("start the engine: %w", err)
		}
	}
	if !supervise.Running(p.berthPid()) {
		// No token or join flags needed: berth keeps its identity in its
		// data directory.
		if err := d.spawnBerth(ctx, h, machine.Spec{}); err != nil {
			return fmt.Errorf("start berth: %w", err)
		}
	}
	return nil
}

// Stop stops berth, then the engine (which stops its containers).
func (d *Driver) Stop(_ context.Context, h *machine.Host) error {
	p, err := d.hostPaths(h)
	if err != nil {
		return err
	}
	supervise.Stop(p.berthPid(), 15*time.Second)
	supervise.Stop(p.engineSupPid(), 30*time.Second)
	return nil
}

// Status is running when berth's supervisor runs, stopped when the host is
// there without it, missing when its namespace or directory is gone.
func (d *Driver) Status(_ context.Context, h *machine.Host) (machine.State, error) {
	p, err := d.hostPaths(h)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p.dir); err != nil {
		return machine.StateMissing, nil
	}
	if _, err := os.Stat("/run/netns/" + h.Local[keyNetns]); err != nil {
		return machine.StateMissing, nil
	}
	if supervise.Running(p.berthPid()) {
		return machine.StateRunning, nil
	}
	return machine.StateStopped, nil
}
