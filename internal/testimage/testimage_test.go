package testimage

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/imagebuild"
	"github.com/berth-dev/berth/test/testkit"
	"github.com/moby/moby/client"
)

func TestEnsureBuildsAndCaches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli, err := imagebuild.NewClient("")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Skipf("no docker engine: %v", err)
	}
	tag, err := Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tag, Repo+":") {
		t.Fatalf("tag %q not in %s", tag, Repo)
	}
	id1, err := imagebuild.ImageID(ctx, cli, tag)
	if err != nil {
		t.Fatal(err)
	}
	tag2, err := Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := imagebuild.ImageID(ctx, cli, tag2)
	if tag2 != tag || id2 != id1 {
		t.Fatalf("second Ensure rebuilt: %s %s -> %s %s", tag, id1, tag2, id2)
	}
}

func TestAppBinaryServesAndHealthchecks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := AppBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+port, "MESSAGE=hello")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	body := waitGet(t, "http://127.0.0.1:"+port+"/")
	if !strings.Contains(body, "hello") {
		t.Fatalf("/ = %q, want MESSAGE in it", body)
	}
	hc := exec.Command(bin, "healthcheck")
	hc.Env = append(os.Environ(), "PORT="+port)
	if out, err := hc.CombinedOutput(); err != nil {
		t.Fatalf("healthcheck against a healthy app: %v: %s", err, out)
	}
	hc = exec.Command(bin, "healthcheck")
	hc.Env = append(os.Environ(), "PORT="+freePort(t))
	if err := hc.Run(); err == nil {
		t.Fatal("healthcheck against a port with no app succeeded")
	}
}

func TestAppOneshotExitCode(t *testing.T) {
	bin, err := AppBinary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "MODE=oneshot", "EXIT_CODE=3")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("oneshot exit: %v, want exit code 3", err)
	}
	if !strings.Contains(string(out), "oneshot") {
		t.Fatalf("oneshot output %q", out)
	}
}

func waitGet(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	return strconv.Itoa(testkit.FreePort(t))
}
