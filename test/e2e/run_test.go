package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	dockerdrv "github.com/berth-dev/berth/internal/driver/docker"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// runOneOffs tries berth run on TestExecAndCp's cluster (its box and host
// services, on the docker and exec drivers): output, stdin and exit code
// come back through the manager; --rm leaves nothing; without --rm the
// one-off stays, ps -a shows it, up keeps it without an orphan warning,
// and down removes it.
func runOneOffs(t *testing.T, c *h.Cluster, dir, project, file string) {
	for _, tc := range []struct {
		name           string
		stdin          string
		args           []string
		code           int
		stdout, stderr string // stderr: its end (a note on images may come first)
	}{
		{name: "output and exit code", args: []string{"box", "sh", "-c", "echo hi; echo err >&2; exit 3"}, code: 3, stdout: "hi\n", stderr: "err\n"},
		{name: "stdin reaches the one-off", stdin: "piped\n", args: []string{"-T", "box", "cat"}, stdout: "piped\n"},
		{name: "flags after the service are the command's", args: []string{"box", "echo", "-T", "-p", "8080:80", "--rm"}, stdout: "-T -p 8080:80 --rm\n"},
		{name: "-e -w -u", args: []string{"-e", "FOO=bar", "-w", "/tmp", "-u", "65534", "box", "sh", "-c", "echo $FOO $PWD $(id -u) $GREETING"},
			stdout: "bar /tmp 65534 from-compose\n"},
		{name: "exec driver", args: []string{"host", "sh", "-c", "echo $MESSAGE; exit 4"}, code: 4, stdout: "host-says-hi\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runStdin(t, c, dir, tc.stdin, append([]string{"-p", project, "run", "--rm"}, tc.args...)...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.HasSuffix(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
	t.Run("run --rm leaves nothing", func(t *testing.T) {
		h.WaitFor(t, 30*time.Second, "no one-off left", func() error { return noOneOffs(t, c, project) })
	})

	var kept string
	t.Run("without --rm the one-off stays until down", func(t *testing.T) {
		r := runStdin(t, c, dir, "", "-p", project, "run", "box", "sh", "-c", "exit 2")
		if r.code != 2 {
			t.Fatalf("exit %d, want 2; stderr %q", r.code, r.stderr)
		}
		ps := c.MustRun(t, dir, "ps", "-a", "-p", project, "--format", "{{.Name}} {{.State}}")
		for _, line := range h.Lines(ps.Stdout) {
			if strings.HasPrefix(line, project+"-box-run-") {
				kept = line
			}
		}
		if !strings.HasSuffix(kept, " exited") {
			t.Fatalf("ps -a shows no exited one-off: %q", ps.Stdout)
		}
		up := c.MustRun(t, dir, "up", "-p", project, "-f", file)
		if strings.Contains(up.Stderr+up.Stdout, "orphan") || strings.Contains(up.Stdout, "-run-") {
			t.Fatalf("up speaks of the one-off: %s", up)
		}
		if ps := c.MustRun(t, dir, "ps", "-a", "-p", project); !strings.Contains(ps.Stdout, strings.Fields(kept)[0]) {
			t.Fatalf("up removed the one-off %s: %s", kept, ps.Stdout)
		}
		c.MustRun(t, dir, "down", "-p", project)
		h.WaitFor(t, time.Minute, "the app gone", func() error {
			if ids := h.AppObjects(t, h.KindContainer, project); len(ids) > 0 {
				return fmt.Errorf("containers left: %v", ids)
			}
			return nil
		})
	})
}

// noOneOffs says what is left of berth run's one-offs in project: tasks,
// service records, containers.
func noOneOffs(t *testing.T, c *h.Cluster, project string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	app, err := c.Client().GetApp(ctx, project)
	if err != nil {
		return err
	}
	for _, svc := range app.Services {
		if svc.IsOneOff() {
			return fmt.Errorf("service record %s left", svc.Name)
		}
	}
	tasks, err := c.PS(t, project)
	if err != nil {
		return err
	}
	for _, tk := range tasks {
		if tk.Service != "box" && tk.Service != "host" {
			return fmt.Errorf("task %s left (%s)", tk.Name(), tk.State)
		}
	}
	ids := h.ObjectsLabelled(t, h.KindContainer, dockerdrv.LabelApp+"="+project)
	var left []string
	for _, id := range ids {
		out, err := h.Docker("inspect", "-f", "{{index .Config.Labels \""+dockerdrv.LabelService+"\"}}", id)
		if err == nil && strings.Contains(out, "-run-") {
			left = append(left, id[:12]+" "+strings.TrimSpace(out))
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("containers left: %v", left)
	}
	return nil
}
