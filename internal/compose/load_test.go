package compose

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// writeFiles creates files (name -> content) under a new temp dir.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const oneService = "services:\n  web:\n    image: nginx\n"

func TestSecretSizeLimit(t *testing.T) {
	compose := "services:\n  web:\n    image: x\n    secrets: [big]\nsecrets:\n  big:\n    file: ./big.bin\n"
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{name: "at the limit", size: types.MaxSecretSize},
		{name: "one byte over", size: types.MaxSecretSize + 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{
				"compose.yaml": compose,
				"big.bin":      strings.Repeat("x", tt.size),
			})
			app, _, err := Load(context.Background(), Options{WorkDir: dir, Environ: []string{}})
			if tt.wantErr {
				if !errors.Is(err, ErrSecretTooLarge) || !strings.Contains(err.Error(), "secrets.big") {
					t.Fatalf("want an error naming secrets.big and wrapping ErrSecretTooLarge, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(app.Secrets["big"].Data); got != tt.size {
				t.Fatalf("secret has %d bytes, want %d", got, tt.size)
			}
		})
	}
}

func TestConfigFromEnvironmentTooLarge(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"compose.yaml": "services:\n  web:\n    image: x\nconfigs:\n  c:\n    environment: BIG\n",
	})
	_, _, err := Load(context.Background(), Options{
		WorkDir: dir,
		Environ: []string{"BIG=" + strings.Repeat("y", types.MaxSecretSize+1)},
	})
	if !errors.Is(err, ErrSecretTooLarge) || !strings.Contains(err.Error(), "configs.c") {
		t.Fatalf("want an error naming configs.c and wrapping ErrSecretTooLarge, got %v", err)
	}
}

func TestFileDiscovery(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		workDir  string // relative to the temp dir
		environ  []string
		wantName string
		wantImg  string
		wantErr  error
	}{
		{
			name:     "compose.yaml in the directory",
			files:    map[string]string{"app/compose.yaml": oneService},
			workDir:  "app",
			wantName: "app", wantImg: "nginx",
		},
		{
			name:     "found in a parent, named after that directory",
			files:    map[string]string{"proj/docker-compose.yml": oneService, "proj/sub/deeper/README": ""},
			workDir:  "proj/sub/deeper",
			wantName: "proj", wantImg: "nginx",
		},
		{
			name: "override file merged",
			files: map[string]string{
				"p/compose.yaml":          oneService,
				"p/compose.override.yaml": "services:\n  web:\n    image: nginx:override\n",
			},
			workDir:  "p",
			wantName: "p", wantImg: "nginx:override",
		},
		{
			name: "COMPOSE_FILE wins over discovery",
			files: map[string]string{
				"q/compose.yaml": oneService,
				"q/other.yaml":   "services:\n  web:\n    image: other\n",
			},
			workDir:  "q",
			environ:  []string{"COMPOSE_FILE=other.yaml"},
			wantName: "q", wantImg: "other",
		},
		{
			name:    "none anywhere",
			files:   map[string]string{"empty/README": ""},
			workDir: "empty",
			wantErr: ErrNoComposeFile,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeFiles(t, tt.files)
			workDir := filepath.Join(root, tt.workDir)
			// No WorkDir: as `docker compose` with no --project-directory,
			// discovery starts in the current directory and the project
			// directory is where the file was found.
			t.Chdir(workDir)
			app, _, err := Load(context.Background(), Options{Environ: append([]string{}, tt.environ...)})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("want %v, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if app.Name != tt.wantName || app.Services[0].Image != tt.wantImg {
				t.Fatalf("got project %q image %q, want %q %q", app.Name, app.Services[0].Image, tt.wantName, tt.wantImg)
			}
		})
	}
}

func TestInvalidProjectNameFlag(t *testing.T) {
	dir := writeFiles(t, map[string]string{"compose.yaml": oneService})
	_, _, err := Load(context.Background(), Options{WorkDir: dir, ProjectName: "Not Valid!", Environ: []string{}})
	if err == nil || !strings.Contains(err.Error(), "Not Valid!") {
		t.Fatalf("want an error naming the project name, got %v", err)
	}
}

func TestNilEnvironUsesProcessEnvironment(t *testing.T) {
	t.Setenv("BERTH_TEST_IMAGE", "from-process-env")
	dir := writeFiles(t, map[string]string{"compose.yaml": "services:\n  web:\n    image: ${BERTH_TEST_IMAGE}\n"})
	app, _, err := Load(context.Background(), Options{WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := app.Services[0].Image; got != "from-process-env" {
		t.Fatalf("image %q, want the process environment's value", got)
	}
}

func TestRenderHidesSecretContent(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"compose.yaml": "name: r\nservices:\n  web:\n    image: nginx\n    stop_grace_period: 1m30s\n    secrets: [pw]\n    configs: [c]\n" +
			"secrets:\n  pw:\n    file: ./pw.txt\nconfigs:\n  c:\n    content: visible-config\n",
		"pw.txt": "hunter2-secret",
	})
	app, _, err := Load(context.Background(), Options{WorkDir: dir, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Render(&buf, app); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, secret := range []string{"hunter2-secret", "visible-config", "aHVudGVy"} {
		if strings.Contains(out, secret) {
			t.Errorf("rendered output contains %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"name: r\n", "data: <14 bytes>", "data: <14 bytes>\n", "image: nginx", "target: /run/secrets/pw", "stop_grace_period: 1m30s\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "services:\n  - name: web\n") || strings.Contains(out, "created_at") {
		t.Errorf("want block-style YAML without bookkeeping fields:\n%s", out)
	}
}

func TestWarningString(t *testing.T) {
	w := Warning{Path: "services.web.deploy.update_config", Message: msgIgnored}
	if got, want := w.String(), "services.web.deploy.update_config: not supported by berth yet, ignored"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
