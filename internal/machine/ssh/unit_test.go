package ssh

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/machine"
)

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   map[string]string
		want options
		err  string
	}{
		{"defaults", map[string]string{OptAddr: "10.0.0.5"}, options{addr: "10.0.0.5:22", user: "root"}, ""},
		{"all", map[string]string{OptAddr: "h.example:2222", OptUser: "deploy", OptKey: "/k", OptKnownHosts: "/kh", OptInsecure: "true", OptInstallDocker: "1"},
			options{addr: "h.example:2222", user: "deploy", key: "/k", knownHosts: "/kh", insecure: true, installDocker: true}, ""},
		{"ipv6", map[string]string{OptAddr: "[fd00::1]"}, options{addr: "[fd00::1]:22", user: "root"}, ""},
		{"no address", map[string]string{}, options{}, "needs --ssh-addr"},
		{"bad port", map[string]string{OptAddr: "h:99999"}, options{}, "port must be a number"},
		{"bad bool", map[string]string{OptAddr: "h", OptInsecure: "yes please"}, options{}, "--insecure-ignore-host-key takes true or false"},
		{"unknown option", map[string]string{OptAddr: "h", "ssh-port": "22"}, options{}, `no option "ssh-port"`},
		{"bad user", map[string]string{OptAddr: "h", OptUser: "a b"}, options{}, "is not a user name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOptions(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	d := New(Config{})
	ok := machine.Spec{Name: "a1", Role: machine.RoleAgent, Join: machine.Join{Addr: "m:7702", Token: "T"}, Options: map[string]string{OptAddr: "h"}}
	for _, tc := range []struct {
		name string
		edit func(*machine.Spec)
		err  string
	}{
		{"ok", func(*machine.Spec) {}, ""},
		{"first manager", func(s *machine.Spec) { s.Role, s.Join = machine.RoleManager, machine.Join{} }, ""},
		{"bad name", func(s *machine.Spec) { s.Name = "../x" }, "may hold only"},
		{"agent without join", func(s *machine.Spec) { s.Join = machine.Join{} }, "needs a manager's address"},
		{"manager with half a join", func(s *machine.Spec) { s.Role, s.Join.Token = machine.RoleManager, "" }, "both"},
		{"bad role", func(s *machine.Spec) { s.Role = "db" }, `role "db"`},
		{"bad label", func(s *machine.Spec) { s.Labels = map[string]string{"a": "b'c"} }, "invalid label"},
		{"bad option", func(s *machine.Spec) { s.Options = map[string]string{} }, "needs --ssh-addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.edit(&s)
			err := d.Check(s)
			if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Check: %v, want %q", err, tc.err)
			}
		})
	}
}

func TestCheckPlatform(t *testing.T) {
	for _, tc := range []struct{ uname, goos, goarch, err string }{
		{"Linux x86_64", "linux", "amd64", ""},
		{"Linux aarch64", "linux", "arm64", ""},
		{"Linux aarch64", "linux", "amd64", "the host runs Linux aarch64 (linux/arm64) and this berth binary is for linux/amd64"},
		{"Darwin arm64", "linux", "arm64", "GOOS=darwin GOARCH=arm64"},
	} {
		err := checkPlatform(tc.uname, tc.goos, tc.goarch)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("checkPlatform(%q, %s/%s) = %v, want %q", tc.uname, tc.goos, tc.goarch, err, tc.err)
		}
	}
}

// The words the driver quotes reach sh as they were, whatever they hold.
func TestQuote(t *testing.T) {
	words := []string{"plain", "with space", "it's", `"dq" $HOME`, "`id`", "a\nb", ""}
	got, err := exec.Command("sh", "-c", `for w in `+quoteAll(words)+`; do printf '[%s]' "$w"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := ""
	for _, w := range words {
		want += "[" + w + "]"
	}
	if string(got) != want {
		t.Fatalf("sh saw %q, want %q", got, want)
	}
}

func TestLastErrors(t *testing.T) {
	exited := "2026-12-01T10:00:00Z supervisor: /var/lib/berth-machine/a1/berth exited (exit status 1); restarting in 200ms\n"
	log := "level=INFO msg=start\nerror: bad token\n" + exited + "error: bad token\n" + exited
	if got := lastErrors(log); got != "error: bad token" {
		t.Fatalf("lastErrors = %q", got)
	}
	if got := lastErrors("a\na\n" + exited + "b\n"); got != "a | b" {
		t.Fatalf("lastErrors = %q", got)
	}
	if got := lastErrors(""); got != "(nothing)" {
		t.Fatalf("lastErrors of nothing = %q", got)
	}
}

func TestDockerdCause(t *testing.T) {
	for _, tc := range []struct{ log, want string }{
		{"time=1 level=info msg=a\nfailed to start daemon: iptables: Permission denied\n2026 supervisor: dockerd exited (exit status 1); restarting in 200ms\n",
			"failed to start daemon: iptables: Permission denied"},
		{"level=info msg=a\ntime=2 level=fatal msg=\"no cgroup\"\nlevel=info msg=b\n", `time=2 level=fatal msg="no cgroup"`},
		{"level=error msg=x\nlevel=info msg=y\n", "level=error msg=x"},
		{"something\n2026 supervisor: dockerd exited (signal: killed); restarting in 200ms\n", "something"},
	} {
		if got := dockerdCause(tc.log); got != tc.want {
			t.Errorf("dockerdCause(%q) = %q, want %q", tc.log, got, tc.want)
		}
	}
}
