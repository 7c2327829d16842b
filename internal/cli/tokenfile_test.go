package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJoinToken(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("good", "BERTH-1-abc-w-def\n", 0o600)
	for _, tc := range []struct {
		name, token, file, want, err string
	}{
		{"flag only", "T", "", "T", ""},
		{"neither", "", "", "", ""},
		{"file", "", good, "BERTH-1-abc-w-def", ""},
		{"missing file is no token", "", filepath.Join(dir, "none"), "", ""},
		{"both", "T", good, "", "--token and --token-file both"},
		{"readable by others", "", file("loose", "T\n", 0o644), "", "chmod 600"},
		{"too big", "", file("big", strings.Repeat("x", maxTokenFile+1), 0o600), "", "more than"},
		{"a directory", "", dir + "/sub", "", "read --token-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "a directory" {
				if err := os.Mkdir(tc.file, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			got, err := joinToken(tc.token, tc.file)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("joinToken: %q, %v; want an error saying %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("joinToken = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
