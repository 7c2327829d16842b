package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

var update = flag.Bool("update", false, "rewrite testdata/*/app.golden.json")

// caseOptions is testdata/<case>/options.json: the Options of a case, with
// paths relative to the case directory.
type caseOptions struct {
	Files       []string `json:"files"`
	ProjectName string   `json:"project_name"`
	WorkDir     string   `json:"work_dir"`
	Profiles    []string `json:"profiles"`
	EnvFiles    []string `json:"env_files"`
	Environ     []string `json:"environ"`
}

// golden is what a case produces: the App, or the error, and the warnings.
type golden struct {
	App      *types.App `json:"app,omitempty"`
	Warnings []string   `json:"warnings,omitempty"`
	Error    string     `json:"error,omitempty"`
}

const dirPlaceholder = "$CASEDIR"

func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) { runGolden(t, dir) })
	}
}

func runGolden(t *testing.T, dir string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	opts := loadCaseOptions(t, abs)
	app, warnings, err := Load(context.Background(), opts)
	var got golden
	if err != nil {
		got.Error = err.Error()
	} else {
		got.App = app
		for _, w := range warnings {
			got.Warnings = append(got.Warnings, w.String())
		}
	}
	out, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out = append(bytes.ReplaceAll(out, []byte(abs), []byte(dirPlaceholder)), '\n')
	path := filepath.Join(dir, "app.golden.json")
	if *update {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("output differs from %s (run with -update to accept):\n%s", path, lineDiff(string(want), string(out)))
	}
}

func loadCaseOptions(t *testing.T, dir string) Options {
	t.Helper()
	var c caseOptions
	raw, err := os.ReadFile(filepath.Join(dir, "options.json"))
	switch {
	case os.IsNotExist(err):
	case err != nil:
		t.Fatal(err)
	default:
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatalf("options.json: %v", err)
		}
	}
	o := Options{
		ProjectName: c.ProjectName,
		WorkDir:     dir,
		Profiles:    c.Profiles,
		// Never the test process's environment: the output must not depend
		// on who runs the tests.
		Environ: append([]string{}, c.Environ...),
	}
	if c.WorkDir != "" {
		o.WorkDir = filepath.Join(dir, c.WorkDir)
	}
	for _, f := range c.Files {
		o.Files = append(o.Files, filepath.Join(dir, f))
	}
	for _, f := range c.EnvFiles {
		o.EnvFiles = append(o.EnvFiles, filepath.Join(dir, f))
	}
	return o
}

// lineDiff shows the first lines that differ, enough to see what changed.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 20; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}
