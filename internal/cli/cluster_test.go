package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
)

func TestToken(t *testing.T) {
	members := []api.Member{
		{ID: "m1", ClusterAddr: "10.0.0.5:7702"},
		{ID: "m2", ClusterAddr: "10.0.0.6:7702", Leader: true},
	}
	tests := []struct {
		name    string
		args    []string
		members []api.Member
		want    string // stdout
		rotated bool
	}{
		{"quiet worker", []string{"token", "worker", "-q"}, members, "SWMTKN-w\n", false},
		{"quiet manager", []string{"token", "manager", "-q"}, members, "SWMTKN-m\n", false},
		{"worker join hint names the leader", []string{"token", "worker"}, members,
			"To add a worker to this cluster, run on the new host:\n\n    berth agent --join 10.0.0.6:7702 --token SWMTKN-w\n", false},
		{"placeholder without members", []string{"token", "worker"}, nil,
			"To add a worker to this cluster, run on the new host:\n\n    berth agent --join MANAGER:7702 --token SWMTKN-w\n", false},
		{"manager join hint", []string{"token", "manager"}, members[:1],
			"To add a manager to this cluster, run on the new host:\n\n    berth server --join 10.0.0.5:7702 --token SWMTKN-m \\\n" +
				"        --addr HOST:7700 --data-dir /var/lib/berth\n\nKeep an odd number of managers (3 or 5).\n", false},
		{"rotate quiet", []string{"token", "worker", "--rotate", "-q"}, members, "SWMTKN-w-rotated\n", true},
		{"rotate says so", []string{"token", "manager", "--rotate"}, nil,
			"Rotated the manager token; the old one no longer works.\nTo add a manager to this cluster, run on the new host:\n\n" +
				"    berth server --join MANAGER:7702 --token SWMTKN-m-rotated \\\n        --addr HOST:7700 --data-dir /var/lib/berth\n\n" +
				"Keep an odd number of managers (3 or 5).\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, url := newFakeManager(t)
			f.tokens = api.Tokens{Worker: "SWMTKN-w", Manager: "SWMTKN-m"}
			f.members = tc.members
			h := newHarness(t)
			if code := h.run(t, append(tc.args, "--addr", url)...); code != 0 {
				t.Fatalf("exit %d: %s", code, h.errOut)
			}
			if h.out.String() != tc.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", h.out, tc.want)
			}
			if rotated := strings.Contains(f.tokens.Worker+f.tokens.Manager, "-rotated"); rotated != tc.rotated {
				t.Errorf("rotated = %v, want %v", rotated, tc.rotated)
			}
		})
	}
}

func TestTokenRejectsUnknownRole(t *testing.T) {
	_, url := newFakeManager(t)
	h := newHarness(t)
	if code := h.run(t, "token", "admin", "--addr", url); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(h.errOut.String(), `invalid argument "admin"`) {
		t.Errorf("stderr = %q", h.errOut)
	}
}

func TestServerMembers(t *testing.T) {
	f, url := newFakeManager(t)
	f.members = []api.Member{
		{ID: "0123456789abcdef", Name: "m1", RaftAddr: "10.0.0.5:7701", APIAddr: "10.0.0.5:7700", ClusterAddr: "10.0.0.5:7702",
			Leader: true, Voter: true, Reachable: true, Health: api.HealthOK},
		{ID: "fedcba9876543210", Name: "m2", RaftAddr: "10.0.0.6:7701", Voter: false, Reachable: false},
		{ID: "00112233445566ff", Name: "m3", RaftAddr: "10.0.0.7:7701", Voter: true, Reachable: true,
			Health: api.HealthUnhealthy, Problem: "/d/raft has 0.0 MiB free, less than the 8.0 MiB reserve"},
	}
	h := newHarness(t)
	if code := h.run(t, "server", "members", "--addr", url); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
	want := "" +
		"ID             NAME   RAFT            API             LEADER   VOTER   REACHABLE   HEALTH\n" +
		"0123456789ab   m1     10.0.0.5:7701   10.0.0.5:7700   yes      yes     yes         ok\n" +
		"fedcba987654   m2     10.0.0.6:7701   -               no       no      no          -\n" +
		"001122334455   m3     10.0.0.7:7701   -               no       yes     yes         unhealthy\n" +
		"m3 is unhealthy: /d/raft has 0.0 MiB free, less than the 8.0 MiB reserve\n"
	if h.out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", h.out, want)
	}

	h = newHarness(t)
	if code := h.run(t, "server", "members", "--json", "--addr", url); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
	var got []api.Member
	if err := json.Unmarshal([]byte(h.out.String()), &got); err != nil || len(got) != 3 || got[0] != f.members[0] || got[2] != f.members[2] {
		t.Errorf("json = %v (%v), want the fake's members", got, err)
	}
}

func TestServerFlagCheck(t *testing.T) {
	tests := []struct {
		o       serverOptions
		wantErr string
	}{
		{serverOptions{}, ""},
		{serverOptions{join: "10.0.0.5:7702", token: "t"}, ""},
		{serverOptions{forceNewCluster: true, dataDir: "/d"}, ""},
		{serverOptions{token: "t"}, "--token is the manager token for --join"},
		{serverOptions{join: "a:1", token: "t", forceNewCluster: true}, "pick one"},
		{serverOptions{forceNewCluster: true, dev: true}, "needs the --data-dir"},
		{serverOptions{heartbeatTTL: -time.Second}, "--heartbeat-ttl must be positive"},
		{serverOptions{certTTL: time.Second}, "--cert-ttl must be between 10s and 366 days"},
		{serverOptions{certTTL: 400 * 24 * time.Hour}, "--cert-ttl must be between"},
		{serverOptions{certTTL: 20 * time.Second}, ""},
		{serverOptions{registryGCGrace: time.Second}, ""},
		{serverOptions{registryGCGrace: time.Millisecond}, "--registry-gc-grace must be between 1s and 24h0m0s"},
		{serverOptions{registryGCGrace: -time.Minute}, "--registry-gc-grace must be between"},
		{serverOptions{addressPool: "10.50.0.0/16", addressSlice: 24}, ""},
		{serverOptions{addressPool: "10.50.0.0/24"}, ""}, // networks of a /25 that cannot grow, /26 slices
		{serverOptions{addressPool: "10.50.0.0"}, "--address-pool"},
		{serverOptions{addressSlice: 30}, "--address-slice 30 with the pool 10.240.0.0/12: small slice size /30"},
		{serverOptions{addressSlice: 20}, "--address-slice 20"},
	}
	for _, tc := range tests {
		err := tc.o.check()
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("check(%+v) = %v, want %q", tc.o, err, tc.wantErr)
		}
	}
}

func TestSnapshotSave(t *testing.T) {
	tests := []struct {
		name     string
		existing string // content of FILE before; "" none
		force    bool
		served   []byte // nil: the manager fails
		wantCode int
		wantFile string // content of FILE after
		wantErr  string
	}{
		{"new file", "", false, []byte("SNAP"), 0, "SNAP", ""},
		{"refuses to overwrite", "OLD", false, []byte("SNAP"), 1, "OLD", "pass --force"},
		{"force overwrites", "OLD", true, []byte("SNAP"), 0, "SNAP", ""},
		{"manager failure keeps the old file", "OLD", true, nil, 1, "OLD", "disk full"},
		{"manager failure leaves no file", "", false, nil, 1, "", "disk full"},
		{"empty snapshot is refused", "", false, []byte{}, 1, "", "empty snapshot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, url := newFakeManager(t)
			f.snapshot = tc.served
			path := filepath.Join(t.TempDir(), "backup.snap")
			if tc.existing != "" {
				if err := os.WriteFile(path, []byte(tc.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"snapshot", "save", path, "--addr", url}
			if tc.force {
				args = append(args, "--force")
			}
			h := newHarness(t)
			if code := h.run(t, args...); code != tc.wantCode {
				t.Fatalf("exit %d, want %d: %s", code, tc.wantCode, h.errOut)
			}
			if !strings.Contains(h.errOut.String(), tc.wantErr) {
				t.Errorf("stderr %q does not contain %q", h.errOut, tc.wantErr)
			}
			got, err := os.ReadFile(path)
			if tc.wantFile == "" {
				if err == nil {
					t.Errorf("%s exists (%q), want none", path, got)
				}
			} else if string(got) != tc.wantFile {
				t.Errorf("file = %q (%v), want %q", got, err, tc.wantFile)
			}
			if tc.wantCode == 0 {
				if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
					t.Errorf("mode = %v (%v), want 0600", st.Mode().Perm(), err)
				}
			}
			if _, err := os.Stat(path + ".tmp"); err == nil {
				t.Errorf("%s.tmp left behind", path)
			}
		})
	}
}

func TestSnapshotRestore(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.snap")
	empty := filepath.Join(dir, "empty.snap")
	if err := os.WriteFile(good, []byte("SNAPSHOT-BYTES"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"sends the file", good, ""},
		{"missing file", filepath.Join(dir, "nope.snap"), "open the snapshot"},
		{"empty file", empty, "is not a snapshot file"},
		{"directory", dir, "is not a snapshot file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, url := newFakeManager(t)
			h := newHarness(t)
			code := h.run(t, "snapshot", "restore", tc.path, "--addr", url)
			if tc.wantErr == "" {
				if code != 0 || string(f.restored) != "SNAPSHOT-BYTES" {
					t.Fatalf("exit %d, manager got %q; stderr: %s", code, f.restored, h.errOut)
				}
				return
			}
			if code != 1 || !strings.Contains(h.errOut.String(), tc.wantErr) || f.restored != nil {
				t.Errorf("exit %d, stderr %q, restored %q; want error %q and nothing sent", code, h.errOut, f.restored, tc.wantErr)
			}
		})
	}
}
