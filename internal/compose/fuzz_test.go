package compose

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes as a Compose file: Load may refuse them,
// but must never panic. Run with: go test -fuzz FuzzLoad ./internal/compose
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*", "compose.yaml"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("services:\n  a:\n    image: x\n    healthcheck:\n      test: [1, 2]\n"))
	f.Add([]byte("services: [1]\n"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		app, _, err := Load(context.Background(), Options{WorkDir: dir, Environ: []string{}})
		if err == nil && app == nil {
			t.Fatal("Load returned neither an app nor an error")
		}
	})
}
