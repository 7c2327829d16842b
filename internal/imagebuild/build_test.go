package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func engine(t *testing.T) *client.Client {
	t.Helper()
	cli, err := NewClient("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Skipf("no docker engine: %v", err)
	}
	return cli
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func uniqueTag(t *testing.T, cli *client.Client) string {
	tag := fmt.Sprintf("berth-test/imagebuild:%d", time.Now().UnixNano())
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	return tag
}

func TestBuildHonoursDockerignoreArgsTargetLabels(t *testing.T) {
	cli := engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := writeFiles(t, map[string]string{
		"Dockerfile": "FROM scratch AS base\nARG WHO\nLABEL who=$WHO\nCOPY . /ctx/\n" +
			"FROM base AS final\nCOPY missing-on-purpose /\n",
		".dockerignore":  "secret.txt\nlogs/\n",
		"keep.txt":       "keep",
		"secret.txt":     "do not send",
		"logs/a.log":     "noise",
		"sub/nested.txt": "nested",
	})
	tag := uniqueTag(t, cli)
	var progress bytes.Buffer
	id, err := Build(ctx, cli, Options{
		Context: dir, Tag: tag, Target: "base",
		Args:   map[string]string{"WHO": "berth"},
		Labels: map[string]string{"berth.test": "imagebuild"},
	}, &progress)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, progress.String())
	}
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("image ID %q", id)
	}
	if !strings.Contains(progress.String(), "Step") {
		t.Fatalf("no progress lines: %q", progress.String())
	}
	got, err := ImageID(ctx, cli, tag)
	if err != nil || got != id {
		t.Fatalf("ImageID(%s) = %s, %v; want %s", tag, got, err, id)
	}
	img, err := cli.ImageInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	labels := img.Config.Labels
	if labels["who"] != "berth" || labels["berth.test"] != "imagebuild" {
		t.Fatalf("labels %v: want who=berth (build arg) and berth.test=imagebuild", labels)
	}
	files := listImageFiles(t, cli, id)
	for _, want := range []string{"ctx/keep.txt", "ctx/sub/nested.txt", "ctx/Dockerfile"} {
		if !files[want] {
			t.Errorf("%s missing from image; have %v", want, files)
		}
	}
	for _, unwanted := range []string{"ctx/secret.txt", "ctx/logs/a.log"} {
		if files[unwanted] {
			t.Errorf("%s was sent despite .dockerignore", unwanted)
		}
	}
}

func TestBuildFailureNamesStep(t *testing.T) {
	cli := engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := writeFiles(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY nothere.txt /\n"})
	_, err := Build(ctx, cli, Options{Context: dir, Tag: uniqueTag(t, cli)}, nil)
	if err == nil {
		t.Fatal("build of a Dockerfile copying a missing file succeeded")
	}
	if !strings.Contains(err.Error(), "COPY nothere.txt") {
		t.Fatalf("error %q does not name the failing step", err)
	}
}

func TestBuildDockerfileOutsideContext(t *testing.T) {
	cli := engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := writeFiles(t, map[string]string{"a.txt": "a"})
	df := filepath.Join(t.TempDir(), "Other.Dockerfile")
	if err := os.WriteFile(df, []byte("FROM scratch\nCOPY a.txt /\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(ctx, cli, Options{Context: dir, Dockerfile: df, Tag: uniqueTag(t, cli)}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestImageIDMissing(t *testing.T) {
	cli := engine(t)
	_, err := ImageID(context.Background(), cli, "berth-test/does-not-exist:never")
	if !errors.Is(err, ErrImageNotFound) {
		t.Fatalf("err = %v, want ErrImageNotFound", err)
	}
}

func TestBuildContextErrors(t *testing.T) {
	tests := []struct {
		name, dir, dockerfile, want string
	}{
		{"missing dir", "/nonexistent/berth", "", "not a directory"},
		{"missing dockerfile", t.TempDir(), "", "dockerfile Dockerfile not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newBuildContext(tt.dir, tt.dockerfile)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// listImageFiles returns the paths in an image's filesystem, read by
// exporting a container created (never started) from it.
func listImageFiles(t *testing.T, cli *client.Client, image string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Image:  image,
		Config: &container.Config{Cmd: []string{"/none"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	rc, err := cli.ContainerExport(ctx, c.ID, client.ContainerExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(hdr.Name, "/")] = true
	}
}
