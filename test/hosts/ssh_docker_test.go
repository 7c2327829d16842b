package hosts

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
	xssh "golang.org/x/crypto/ssh"
)

// sshEnv is what TestSSHMachine's parts share: the CLI, its cluster, the
// key the targets take, the sshd image and the test's network.
type sshEnv struct {
	c                       cli
	home, cluster, dir, key string
	image, network          string
	pub                     xssh.PublicKey
	ac                      *api.Client
}

// dockerCaps are what dockerd needs to start in a container here without
// --privileged (which this engine refuses), found by trying: SYS_ADMIN to
// mount, NET_ADMIN for its iptables rules and bridge, no AppArmor or
// seccomp profile in its way. Its containers also need the cgroup
// hierarchies writable, which the test mounts into the target after it
// starts (so the target is set up like a small VM, not by the driver).
var dockerCaps = []string{"--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
	"--security-opt", "apparmor=unconfined", "--security-opt", "seccomp=unconfined"}

// dockerApp runs one container on d1, from the image the test loads into
// d1's engine (the target reaches no registry).
const dockerApp = `
services:
  idle:
    image: ` + baseImage + `
    command: ["sleep", "3600"]
    deploy:
      placement:
        constraints: ["node.labels.machine==d1"]
`

// installDocker: `machine create --driver ssh --install-docker` on a host
// with no package manager berth knows fails at once; on a host where
// dockerd cannot start, the package is installed (apt-get, from Debian's
// mirror) and starting dockerd fails naming the step and dockerd's own
// cause, leaving nothing of berth; on a host where it can, dockerd runs
// under berth's supervisor and a docker task runs on the new node.
func installDocker(t *testing.T, e sshEnv) {
	// The target's dockerd puts its containers' cgroups under a parent of
	// the test's own, in this machine's hierarchies (cgroup v1 has no
	// namespace for them); removed once the target is gone (cleanups run
	// last registered first).
	parent := "berth-hosts-test-" + randHex(t, 4)
	t.Cleanup(func() { removeCgroups(t, parent) })
	plain := startSSHTarget(t, e.image, e.network, e.pub)
	able := startSSHTarget(t, e.image, e.network, e.pub, dockerCaps...)
	// The cgroup hierarchies writable for dockerd's containers.
	able.sh(t, `for d in /sys/fs/cgroup/*/; do s=$(basename $d); o=$s; [ $s = systemd ] && o=none,name=systemd; umount $d && mount -t cgroup -o $o cgroup $d; done
mkdir -p /etc/docker && echo '{"cgroup-parent": "/`+parent+`"}' > /etc/docker/daemon.json`)
	kh := knownHostsFile(t, e.dir, "known_hosts_docker", map[string]xssh.PublicKey{plain.ip: plain.hostKey(t), able.ip: able.hostKey(t)})
	create := func(tg sshTarget, name string, extra ...string) h.Result {
		args := []string{"machine", "create", "--driver", "ssh", "--install-docker", "--ssh-addr", tg.ip, "--ssh-key", e.key, "--known-hosts", kh}
		return e.c.run(t, append(append(args, extra...), name)...)
	}

	t.Run("no package manager berth knows", func(t *testing.T) {
		plain.sh(t, "mv /usr/bin/apt-get /usr/bin/apt-get.off")
		defer plain.sh(t, "mv /usr/bin/apt-get.off /usr/bin/apt-get")
		errLine := oneErrorLine(t, create(plain, "d0"))
		t.Logf("%s", errLine)
		if !strings.Contains(errLine, "create host d0: install docker: the host has no package manager berth knows") {
			t.Errorf("error %q does not name the step and the cause", errLine)
		}
		noTrace(t, e.c, e.home, e.cluster, "d0")
		if left := plain.leftovers(t); left != "" {
			t.Errorf("left on %s:\n%s", plain.name, left)
		}
	})

	t.Run("dockerd cannot start", func(t *testing.T) {
		began := time.Now()
		r := create(plain, "d2")
		errLine := oneErrorLine(t, r)
		t.Logf("after %.0fs: %s\n%s", time.Since(began).Seconds(), errLine, r.Stderr)
		if strings.Contains(errLine, "(see ") {
			t.Errorf("error %q points to a log the failed start removed", errLine)
		}
		for _, w := range []string{"create host d2: start docker: dockerd exits as soon as it starts: ", "failed to start daemon", "Permission denied"} {
			if !strings.Contains(errLine, w) {
				t.Errorf("error %q does not say %q", errLine, w)
			}
		}
		if !strings.Contains(r.Stderr, "d2: install docker") || !strings.Contains(r.Stderr, "d2: start docker") {
			t.Errorf("the progress does not show the install and start steps:\n%s", r.Stderr)
		}
		noTrace(t, e.c, e.home, e.cluster, "d2")
		if left := plain.leftovers(t) + plain.sh(t, "pgrep -a dockerd; pgrep -a containerd; true"); left != "" {
			t.Errorf("left on %s:\n%s", plain.name, left)
		}
		// The package itself stays: a whole install, the host's own.
		if st := plain.sh(t, "dpkg-query -W -f '${Status}' docker.io"); st != "install ok installed" {
			t.Errorf("docker.io on %s: %q", plain.name, st)
		}
	})

	t.Run("dockerd under the supervisor runs a docker task", func(t *testing.T) {
		began := time.Now()
		r := create(able, "d1", "--label", "machine=d1")
		if r.Code != 0 {
			t.Fatalf("%s", r)
		}
		t.Logf("made in %.0fs:\n%s%s", time.Since(began).Seconds(), r.Stderr, r.Stdout)
		// dockerd's parent is berth's supervisor, in the driver's
		// directory for it.
		sup := able.sh(t, `p=$(pgrep -x dockerd); tr '\0' ' ' < /proc/$(awk '/^PPid:/ {print $2}' /proc/$p/status)/cmdline`)
		if !strings.HasPrefix(sup, "/var/lib/berth-machine/.dockerd/berth machine-supervise ") {
			t.Fatalf("dockerd's parent is %q, not berth's supervisor", sup)
		}
		if m := machineByName(t, e.c, "d1"); m.State != "running" {
			t.Fatalf("machine d1: %+v", m)
		}
		loadImage(t, able, baseImage)
		file := h.WriteFile(t, e.dir, "docker.yaml", dockerApp)
		e.c.must(t, "up", "-p", "dockerapp", "-f", file)
		node := waitNodeReady(t, e.ac, "d1")
		h.WaitFor(t, 2*time.Minute, "the docker task running on d1", func() error {
			tasks, _, err := e.ac.ListTasks(context.Background(), api.TaskQuery{App: "dockerapp"})
			if err != nil {
				return err
			}
			for _, tk := range tasks {
				if tk.State == types.TaskRunning && tk.NodeID == node {
					return nil
				}
			}
			var s []string
			for _, tk := range tasks {
				s = append(s, fmt.Sprintf("%s %s", tk.State, tk.Error))
			}
			return fmt.Errorf("tasks: %v", s)
		})
		// up pins the service to the image's ID (it shipped the local-only
		// image through the cluster registry), so the engine names the
		// container's image by ID, not by the tag loaded into it.
		id := strings.TrimSpace(able.sh(t, "docker image inspect --format '{{.Id}}' "+baseImage))
		if ps := able.sh(t, "docker ps --no-trunc --format '{{.Image}}'"); id == "" || (!strings.Contains(ps, baseImage) && !strings.Contains(ps, id)) {
			t.Fatalf("d1's engine runs no %s (%s) container: %q", baseImage, id, ps)
		}
		e.c.must(t, "down", "-p", "dockerapp")
		e.c.must(t, "machine", "rm", "d1")
		// berth's host is gone; Docker, the host's now, stays running.
		for _, l := range strings.Split(able.leftovers(t), "\n") {
			if l != "" && !strings.Contains(l, "/var/lib/berth-machine/.dockerd") {
				t.Errorf("left on %s after rm: %s", able.name, l)
			}
		}
		engine := able.sh(t, "pgrep -x dockerd")
		// Another host there finds Docker installed and running: it
		// installs and starts nothing.
		began = time.Now()
		r = create(able, "d3")
		if r.Code != 0 {
			t.Fatalf("%s", r)
		}
		t.Logf("d3 made in %.1fs", time.Since(began).Seconds())
		if now := able.sh(t, "pgrep -x dockerd"); now != engine {
			t.Errorf("dockerd was %s, is %s: the second create started another", engine, now)
		}
		e.c.must(t, "machine", "rm", "d3")
	})
}

// loadImage copies image from this machine's engine into tg's.
func loadImage(t *testing.T, tg sshTarget, image string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", "docker save "+image+" | docker exec -i "+tg.name+" docker load")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("load %s into %s: %v\n%s", image, tg.name, err, out)
	}
}

// removeCgroups removes the (empty, once their processes are gone) cgroup
// directories named parent in this machine's hierarchies.
func removeCgroups(t *testing.T, parent string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
	for _, d := range dirs {
		var all []string
		_ = filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err == nil && de.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		for i := len(all) - 1; i >= 0; i-- {
			if err := os.Remove(all[i]); err != nil {
				t.Logf("remove cgroup %s: %v", all[i], err)
			}
		}
	}
}
