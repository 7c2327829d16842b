package testimage

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/berth-dev/berth/internal/imagebuild"
)

//go:embed app/*.go
var appSource embed.FS

// Repo is the image repository test images are tagged in.
const Repo = "berth-test/app"

// ImageBinary is the app's path inside the image.
const ImageBinary = "/app"

const dockerfile = `FROM scratch
COPY app /app
ENTRYPOINT ["/app"]
`

// Ensure returns the tag of the test image, building it first if the local
// engine does not have it yet.
func Ensure(ctx context.Context) (string, error) {
	hash, err := sourceHash()
	if err != nil {
		return "", err
	}
	tag := Repo + ":" + hash
	cli, err := imagebuild.NewClient("")
	if err != nil {
		return "", err
	}
	defer cli.Close()
	if _, err := imagebuild.ImageID(ctx, cli, tag); err == nil {
		return tag, nil
	} else if !errors.Is(err, imagebuild.ErrImageNotFound) {
		return "", err
	}

	dir, err := os.MkdirTemp("", "berth-testimage-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := buildApp(ctx, filepath.Join(dir, "app")); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", err
	}
	opts := imagebuild.Options{Context: dir, Tag: tag, Labels: map[string]string{"berth.test": "true"}}
	if _, err := imagebuild.Build(ctx, cli, opts, nil); err != nil {
		return "", fmt.Errorf("build test image: %w", err)
	}
	return tag, nil
}

// AppBinary returns the path of the app built for this host, building it
// into the user's cache directory if it is not there yet.
func AppBinary(ctx context.Context) (string, error) {
	hash, err := sourceHash()
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "berth-test")
	bin := filepath.Join(dir, "app-"+hash)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Build beside the final name and rename, so a concurrent test never
	// runs a half-written binary.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := buildApp(ctx, filepath.Join(tmp, "app")); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, "app"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// sourceHash is a short hash of the app's source: the cache key.
func sourceHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(appSource, "app", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := appSource.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash test app source: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// buildApp compiles the embedded source as a static binary at out. The
// source is copied into its own module so the build needs nothing but the
// standard library, whatever the caller's working directory.
func buildApp(ctx context.Context, out string) error {
	src, err := os.MkdirTemp("", "berth-testapp-src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	if err := copySource(src); err != nil {
		return err
	}
	mod := "module berthtestapp\n\ngo 1.22\n"
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644); err != nil {
		return err
	}
	gocmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build test app: the go command is not on PATH: %w", err)
	}
	cmd := exec.CommandContext(ctx, gocmd, "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build test app: %w: %s", err, b)
	}
	return nil
}

func copySource(dst string) error {
	entries, err := appSource.ReadDir("app")
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := appSource.ReadFile("app/" + e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
