package hosts

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	h "github.com/berth-dev/berth/test/e2e/harness"
	xssh "golang.org/x/crypto/ssh"
)

// The SSH targets here are containers built from the ssh driver's own
// test image (internal/machine/ssh/testdata/sshd: Debian's openssh-server,
// host keys of its own, no systemd), on a Docker network the test makes:
// a host with a filesystem of its own, which a local host is not.

// docker runs the docker CLI and returns its trimmed output.
func docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// buildImage builds dir (files are the ones its tag hashes) once: the tag
// is the hash the ssh driver's tests give it, so both share one image.
func buildImage(t *testing.T, dir string, files ...string) string {
	t.Helper()
	sum := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		sum.Write(b)
	}
	tag := "berth-test/" + filepath.Base(dir) + ":" + hex.EncodeToString(sum.Sum(nil))[:12]
	if exec.Command("docker", "image", "inspect", tag).Run() == nil {
		return tag
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", tag, dir).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", dir, err, out)
	}
	return tag
}

// sshNetwork makes a Docker network for the test's targets.
func sshNetwork(t *testing.T) string {
	t.Helper()
	name := "berth-hosts-ssh-" + randHex(t, 4)
	docker(t, "network", "create", name)
	t.Cleanup(func() { _ = exec.Command("docker", "network", "rm", name).Run() })
	return name
}

// sshTarget is a running sshd container.
type sshTarget struct{ name, ip string }

// startSSHTarget runs image on network with pub authorized for root, with
// extra `docker run` flags, and waits until its sshd speaks.
func startSSHTarget(t *testing.T, image, network string, pub xssh.PublicKey, extra ...string) sshTarget {
	t.Helper()
	name := "berth-hosts-ssh-" + randHex(t, 4)
	args := append([]string{"run", "-d", "--name", name, "--network", network, "--hostname", name,
		"-e", "AUTHORIZED_KEY=" + strings.TrimSpace(string(xssh.MarshalAuthorizedKey(pub)))}, extra...)
	docker(t, append(args, image)...)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	tg := sshTarget{name: name, ip: docker(t, "inspect", name, "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")}
	h.WaitFor(t, 30*time.Second, "sshd in "+name, func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(tg.ip, "22"), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 4))
		return err
	})
	return tg
}

func (tg sshTarget) sh(t *testing.T, cmd string) string {
	t.Helper()
	return docker(t, "exec", tg.name, "sh", "-c", cmd)
}

func (tg sshTarget) hostKey(t *testing.T) xssh.PublicKey {
	t.Helper()
	k, _, _, _, err := xssh.ParseAuthorizedKey([]byte(tg.sh(t, "cat /etc/ssh/ssh_host_ed25519_key.pub")))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// leftovers is what any berth host left on the target: directories of the
// driver and processes of it.
func (tg sshTarget) leftovers(t *testing.T) string {
	t.Helper()
	return tg.sh(t, `ls -d /var/lib/berth-machine/* /var/lib/berth-machine/.dockerd 2>/dev/null; `+
		`for p in /proc/[0-9]*; do [ "${p#/proc/}" = $$ ] && continue; c=$(tr '\0' ' ' < $p/cmdline 2>/dev/null); case "$c" in *berth-machine*) echo "pid ${p#/proc/}: $c";; esac; done; true`)
}

// cmdlines is every command line running on the target.
func (tg sshTarget) cmdlines(t *testing.T) string {
	t.Helper()
	return tg.sh(t, `for p in /proc/[0-9]*/cmdline; do tr '\0' ' ' < $p 2>/dev/null; echo; done; true`)
}

// newSSHKey writes a fresh ed25519 private key into dir.
func newSSHKey(t *testing.T, dir, name string) (string, xssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := xssh.MarshalPrivateKey(priv, "berth hosts test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := xssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return path, sp
}

// knownHostsFile pairs each address with a key.
func knownHostsFile(t *testing.T, dir, name string, pairs map[string]xssh.PublicKey) string {
	t.Helper()
	var b strings.Builder
	for addr, k := range pairs {
		b.WriteString(addr + " " + string(xssh.MarshalAuthorizedKey(k)))
	}
	return h.WriteFile(t, dir, name, b.String())
}

// buildStaticBerth builds cmd/berth without cgo, so the copy the ssh
// driver puts in a Debian container runs there whatever this machine's libc.
func buildStaticBerth(t *testing.T, root, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, "./cmd/berth")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, b)
	}
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// unusedAddr is an address of ip's /24 where no container runs (Docker
// hands a network's addresses out from its start).
func unusedAddr(t *testing.T, ip string) string {
	t.Helper()
	v4 := net.ParseIP(ip).To4()
	if v4 == nil {
		t.Fatalf("%s is not IPv4", ip)
	}
	return fmt.Sprintf("%d.%d.%d.250", v4[0], v4[1], v4[2])
}
