package cli

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

// TestExecFlags: berth's flags come before SERVICE; everything after it is
// the command, flags and all.
func TestExecFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		service string
		cmd     []string
		noTTY   bool
		env     []string
		user    string
		workdir string
		index   int
		wantErr string
	}{
		{args: []string{"db", "mysqldump", "-u", "root"}, service: "db", cmd: []string{"mysqldump", "-u", "root"}, index: 1},
		{args: []string{"-T", "--index", "2", "-e", "A=1", "-e", "B", "-u", "1:2", "-w", "/w", "web", "sh", "-c", "echo -T"},
			service: "web", cmd: []string{"sh", "-c", "echo -T"}, noTTY: true, env: []string{"A=1", "B"}, user: "1:2", workdir: "/w", index: 2},
		{args: []string{"web", "--index", "3"}, service: "web", cmd: []string{"--index", "3"}, index: 1},
		{args: []string{"web"}, wantErr: "requires at least 2 arg"},
		{args: []string{"--index", "x", "web", "ls"}, wantErr: "invalid argument"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var service string
			var command []string
			cmd := newExecCommand(&env{})
			cmd.RunE = func(_ *cobra.Command, args []string) error {
				service, command = args[0], args[1:]
				return nil
			}
			cmd.SetArgs(tc.args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f := cmd.Flags()
			noTTY, _ := f.GetBool("no-TTY")
			env, _ := f.GetStringArray("env")
			user, _ := f.GetString("user")
			workdir, _ := f.GetString("workdir")
			index, _ := f.GetInt("index")
			if service != tc.service || strings.Join(command, "|") != strings.Join(tc.cmd, "|") || noTTY != tc.noTTY ||
				strings.Join(env, "|") != strings.Join(tc.env, "|") || user != tc.user || workdir != tc.workdir || index != tc.index {
				t.Fatalf("service %q cmd %q -T %v env %q -u %q -w %q --index %d", service, command, noTTY, env, user, workdir, index)
			}
		})
	}
}

func TestExecEnv(t *testing.T) {
	e := &env{environ: func() []string { return []string{"HOME=/h", "EMPTY="} }}
	got := e.execEnv([]string{"A=1", "HOME", "EMPTY", "UNSET", "B=x=y"})
	if strings.Join(got, " ") != "A=1 HOME=/h EMPTY= B=x=y" {
		t.Fatalf("execEnv = %q", got)
	}
}

func TestPickReplica(t *testing.T) {
	task := func(id string, slot int, node string, state, desired types.TaskState) *types.Task {
		return &types.Task{ID: id, Service: "web", Slot: slot, NodeID: node, State: state, DesiredState: desired}
	}
	run, want := types.TaskRunning, types.DesiredRunning
	replicated := []*types.Task{
		task("old", 1, "n1", types.TaskFailed, types.DesiredShutdown),
		task("a", 1, "n1", run, want),
		task("b", 2, "n2", run, want),
		task("leaving", 3, "n1", run, types.DesiredShutdown),
		task("c", 4, "n1", run, want),
	}
	global := []*types.Task{task("g2", 0, "n2", run, want), task("g1", 0, "n1", run, want)}
	for _, tc := range []struct {
		name    string
		tasks   []*types.Task
		index   int
		want    string
		wantErr string
	}{
		{"first replica", replicated, 1, "a", ""},
		{"by slot, not by place", replicated, 4, "c", ""},
		{"a slot being shut down", replicated, 3, "", "no running replica 3; running replicas: 1, 2, 4 (pick one with --index)"},
		{"global: node order", global, 2, "g2", ""},
		{"global: out of range", global, 3, "", "running replicas: 1, 2"},
		{"none running", []*types.Task{task("x", 1, "n1", types.TaskPending, want)}, 1, "", "service web has no running task; start it with berth up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pickReplica(tc.tasks, "web", tc.index)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.ID != tc.want {
				t.Fatalf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestParseCopyArgs(t *testing.T) {
	for _, tc := range []struct {
		src, dst string
		from, to copyEnd
		wantErr  string
	}{
		{src: "web:/etc/hosts", dst: ".", from: copyEnd{"web", "/etc/hosts"}, to: copyEnd{path: "."}},
		{src: "./a:b", dst: "web:/tmp/", from: copyEnd{path: "./a:b"}, to: copyEnd{"web", "/tmp/"}},
		{src: "/abs/a:b", dst: "web:/x", from: copyEnd{path: "/abs/a:b"}, to: copyEnd{"web", "/x"}},
		{src: "-", dst: "web:/x", from: copyEnd{path: "-"}, to: copyEnd{"web", "/x"}},
		{src: "web:/a", dst: "db:/b", wantErr: "not between two tasks"},
		{src: "a", dst: "b", wantErr: "must be SERVICE:PATH"},
		{src: "web:etc/hosts", dst: ".", wantErr: "must be absolute"},
	} {
		t.Run(tc.src+" "+tc.dst, func(t *testing.T) {
			from, to, err := parseCopyArgs(tc.src, tc.dst)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || from != tc.from || to != tc.to {
				t.Fatalf("got %+v %+v %v", from, to, err)
			}
		})
	}
}

// TestTarRoundTrip: what writeTar sends, extractTar writes back the same,
// into a directory or renamed, as docker cp does.
func TestTarRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "site")
	writeFiles(t, src, map[string]string{"index.html": "hi", "css/a.css": "body{}"})
	if err := os.Symlink("index.html", filepath.Join(src, "home.html")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dst, top string
		mkdir          bool
	}{
		{"into an existing directory", "out", "out/site", true},
		{"as a new name", "copy", "copy", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dst := filepath.Join(base, tc.dst)
			if tc.mkdir {
				if err := os.Mkdir(dst, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			var buf bytes.Buffer
			if err := writeTar(&buf, src); err != nil {
				t.Fatal(err)
			}
			if err := extractTar(&buf, dst); err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]string{"index.html": "hi", "css/a.css": "body{}", "home.html": "hi"} {
				got, err := os.ReadFile(filepath.Join(base, tc.top, name))
				if err != nil || string(got) != want {
					t.Fatalf("%s: %q, %v; want %q", name, got, err, want)
				}
			}
		})
	}
}

// TestExtractTarStaysInside: entries that climb out through a symlink the
// archive made are refused, a name with ".." is held to the destination
// (as a rooted path is cleaned), and nothing lands outside.
func TestExtractTarStaysInside(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []tar.Header
		inside  string // where an entry lands instead, when it is not refused
	}{
		{"dot-dot", []tar.Header{{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, {Name: "d/../../evil", Typeflag: tar.TypeReg, Mode: 0o644}}, "evil"},
		{"through a symlink", []tar.Header{{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "d/up", Typeflag: tar.TypeSymlink, Linkname: "../.."}, {Name: "d/up/evil", Typeflag: tar.TypeReg, Mode: 0o644}}, ""},
		{"absolute symlink", []tar.Header{{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "d/tmp", Typeflag: tar.TypeSymlink, Linkname: "/tmp"}, {Name: "d/tmp/evil", Typeflag: tar.TypeReg, Mode: 0o644}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outer := t.TempDir()
			dst := filepath.Join(outer, "in", "out")
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range tc.entries {
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
			}
			tw.Close()
			err := extractTar(&buf, dst)
			if tc.inside != "" {
				if _, serr := os.Lstat(filepath.Join(dst, tc.inside)); err != nil || serr != nil {
					t.Fatalf("extract: %v; %s in the destination: %v", err, tc.inside, serr)
				}
			} else if err == nil {
				t.Fatal("an entry outside the destination was extracted")
			}
			for _, p := range []string{filepath.Join(outer, "evil"), filepath.Join(outer, "in", "evil"), "/tmp/evil"} {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("%s was written", p)
				}
			}
		})
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
