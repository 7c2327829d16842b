package ssh

import (
	"bytes"
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

	xssh "golang.org/x/crypto/ssh"
)

// The SSH targets of these tests are containers built from
// testdata/sshd: Debian's openssh-server with host keys of their own, on
// a Docker network the test makes (so the test talks only to addresses it
// made).

// docker runs the docker CLI and returns its trimmed output.
func docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := dockerErr(args...)
	if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func dockerErr(args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("docker", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// needDocker skips when no Docker engine answers (CI has one).
func needDocker(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("needs the docker CLI and an engine")
	}
	if _, err := dockerErr("info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Skipf("needs a Docker engine: %v", err)
	}
}

// sshdImage builds testdata/sshd once; its tag is a hash of the files, so
// a second run (or a changed Dockerfile) finds the right image.
func sshdImage(t *testing.T) string { return testImage(t, "sshd", "Dockerfile", "start.sh") }

// testImage builds testdata/dir once, tagged by a hash of its files.
func testImage(t *testing.T, dir string, files ...string) string {
	t.Helper()
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("testdata", dir, f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	tag := "berth-test/" + dir + ":" + hex.EncodeToString(h.Sum(nil))[:12]
	if _, err := dockerErr("image", "inspect", tag); err == nil {
		return tag
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", tag, filepath.Join("testdata", dir)).CombinedOutput(); err != nil {
		t.Fatalf("build the %s image: %v\n%s", dir, err, out)
	}
	return tag
}

// testNetwork makes a Docker network for the test and returns its name
// and gateway (this machine's address on it).
func testNetwork(t *testing.T) (string, string) {
	t.Helper()
	name := "berth-ssh-test-" + randHex(4)
	docker(t, "network", "create", name)
	t.Cleanup(func() { _, _ = dockerErr("network", "rm", name) })
	gw := docker(t, "network", "inspect", name, "--format", "{{range .IPAM.Config}}{{.Gateway}}{{end}}")
	if net.ParseIP(gw) == nil {
		t.Fatalf("network %s has no gateway: %q", name, gw)
	}
	return name, gw
}

// target is a running sshd container.
type target struct {
	name, ip string
}

// startTarget runs an sshd container on network that takes pub, and waits
// until its sshd answers.
func startTarget(t *testing.T, image, network string, pub xssh.PublicKey) target {
	t.Helper()
	name := "berth-ssh-test-" + randHex(4)
	docker(t, "run", "-d", "--name", name, "--network", network, "--hostname", name,
		"-e", "AUTHORIZED_KEY="+strings.TrimSpace(string(xssh.MarshalAuthorizedKey(pub))), image)
	t.Cleanup(func() { _, _ = dockerErr("rm", "-f", name) })
	ip := docker(t, "inspect", name, "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
	tg := target{name: name, ip: ip}
	waitFor(t, 30*time.Second, "sshd in "+name+" to answer", func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "22"), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b := make([]byte, 4)
		_, err = c.Read(b)
		return err
	})
	return tg
}

// hostKey is the target's ed25519 host key.
func (tg target) hostKey(t *testing.T) xssh.PublicKey {
	t.Helper()
	k, _, _, _, err := xssh.ParseAuthorizedKey([]byte(docker(t, "exec", tg.name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub")))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sh runs a shell command in the target.
func (tg target) sh(t *testing.T, cmd string) string {
	t.Helper()
	return docker(t, "exec", tg.name, "sh", "-c", cmd)
}

// leftovers lists what any host made on the target: directories of the
// driver, its files on /run, and processes running a berth of it.
func (tg target) leftovers(t *testing.T) string {
	t.Helper()
	return tg.sh(t, `ls -d `+baseDir+`/* /run/berth-machine-* 2>/dev/null; `+
		`for p in /proc/[0-9]*; do [ "${p#/proc/}" = $$ ] && continue; c=$(tr '\0' ' ' < $p/cmdline 2>/dev/null); case "$c" in *berth-machine*) echo "pid ${p#/proc/}: $c";; esac; done; true`)
}

// newKey writes a fresh ed25519 private key (OpenSSH format) into dir.
func newKey(t *testing.T, dir, name string) (string, xssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := xssh.MarshalPrivateKey(priv, "berth test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, err := xssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return path, sshPub
}

// knownHosts writes a known_hosts file that pairs each address with a key.
func knownHosts(t *testing.T, dir, name string, pairs map[string]xssh.PublicKey) string {
	t.Helper()
	var b strings.Builder
	for addr, k := range pairs {
		b.WriteString(addr + " " + string(xssh.MarshalAuthorizedKey(k)))
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// buildBerth compiles cmd/berth, static so it runs in any Linux target.
func buildBerth(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "berth")
	cmd := exec.Command("go", "build", "-o", out, "github.com/berth-dev/berth/cmd/berth")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, b)
	}
	return out
}

// waitFor polls f until it returns nil or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %v", d, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
