package compose

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSchemaErrorsStable loads a file with three typos many times: all
// three must be named, in the same order each time (compose-go names one,
// picked by the validator's map order).
func TestSchemaErrorsStable(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("testdata", "err_three_typos"))
	if err != nil {
		t.Fatal(err)
	}
	var first string
	for i := range 20 {
		_, _, err := Load(context.Background(), Options{WorkDir: dir, Environ: []string{}})
		if err == nil {
			t.Fatal("a file with three typos loaded")
		}
		if i == 0 {
			first = err.Error()
			for _, key := range []string{"services.web.imgae", "services.web.deplyo", "services.db.enviroment"} {
				if !strings.Contains(first, key) {
					t.Errorf("error does not name %s:\n%s", key, first)
				}
			}
			continue
		}
		if err.Error() != first {
			t.Fatalf("run %d gave another error:\n%s\nfirst:\n%s", i, err, first)
		}
	}
}

// TestSchemaNoFalseAlarms checks every valid golden case against the
// schema as schemaErrors does: a file compose-go accepts must break
// nothing, or a real error would be reported beside invented ones.
func TestSchemaNoFalseAlarms(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		if strings.HasPrefix(filepath.Base(dir), "err_") {
			continue
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			abs, _ := filepath.Abs(dir)
			o := loadCaseOptions(t, abs)
			if _, _, err := Load(context.Background(), o); err != nil {
				t.Skipf("case does not load: %v", err)
			}
			if errs := schemaErrors(context.Background(), o); len(errs) > 0 {
				t.Errorf("schema errors in a valid file: %v", errs)
			}
		})
	}
}

func TestSchemaMessages(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"typo in a port", "services:\n  web:\n    image: x\n    ports:\n      - target: 80\n        publishd: 8080\n",
			`services.web.ports[0].publishd: not a Compose key; did you mean "published"?`},
		{"no key close enough", "services:\n  web:\n    image: x\n    flavour: mint\n",
			"services.web.flavour: not a Compose key; check its spelling"},
		{"top-level typo", "services:\n  web:\n    image: x\nvolumse:\n  data: {}\n",
			`volumse: not a Compose key; did you mean "volumes"?`},
		{"wrong type", "services:\n  web:\n    image: x\n    restart: 3\n", "services.web.restart: must be a string"},
		{"bad key beside a wrong type", "services:\n  web:\n    image: x\n    healthcheck:\n      interval: 5\n    imgae: y\n",
			"2 problems; fix them all:\n  services.web.healthcheck.interval: must be a string\n  services.web.imgae: not a Compose key; did you mean \"image\"?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"compose.yaml": tt.file})
			_, _, err := Load(context.Background(), Options{WorkDir: dir, Environ: []string{}})
			if err == nil || !strings.HasSuffix(err.Error(), ": "+tt.want) {
				t.Fatalf("got %v\nwant it to end with %q", err, tt.want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"imgae", "image", 1}, {"deplyo", "deploy", 1}, {"enviroment", "environment", 1}, {"", "abc", 3}, {"port", "ports", 1}, {"flavour", "labels", 5}} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
