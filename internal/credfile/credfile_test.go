package credfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	env := EnvLookup([]string{"HOME=/nowhere", "XDG_CONFIG_HOME=" + dir})
	if tok, err := Load(env, "127.0.0.1:7700"); err != nil || tok != "" {
		t.Fatalf("before save: %q, %v", tok, err)
	}
	if err := Save(env, "127.0.0.1:7700", "BERTHADM-x"); err != nil {
		t.Fatal(err)
	}
	if err := Save(env, "127.0.0.1:7710", "BERTHADM-y"); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{"127.0.0.1:7700": "BERTHADM-x", "127.0.0.1:7710": "BERTHADM-y", "127.0.0.2:7700": ""} {
		if tok, err := Load(env, addr); err != nil || tok != want {
			t.Errorf("%s: %q, %v; want %q", addr, tok, err, want)
		}
	}
	path, _ := Path(env, "127.0.0.1:7700")
	if filepath.Dir(path) != filepath.Join(dir, "berth", "local") {
		t.Errorf("path %s not under the config dir", path)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, st.Mode().Perm(), err, want)
		}
	}
}

func TestConfigDir(t *testing.T) {
	cases := []struct {
		env  []string
		want string
		err  bool
	}{
		{[]string{"XDG_CONFIG_HOME=/x", "HOME=/h"}, "/x/berth", false},
		{[]string{"HOME=/h"}, "/h/.config/berth", false},
		{nil, "", true},
	}
	for _, tc := range cases {
		got, err := ConfigDir(EnvLookup(tc.env))
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%v: %q, %v; want %q (error %v)", tc.env, got, err, tc.want, tc.err)
		}
	}
}
