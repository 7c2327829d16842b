package imagepush

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/imagebuild"
	"github.com/moby/moby/client"
)

// runnableImage builds a FROM scratch image of a static program that
// prints a file of random text, so the pulled image can be run and read
// back (small, so the test does not spend its time moving a base image).
func runnableImage(t *testing.T, cli *client.Client) (tag, text string) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the image's program")
	}
	dir := t.TempDir()
	text = rand.Text()
	prog := "package main\n\nimport \"os\"\n\nfunc main() {\n\tb, _ := os.ReadFile(\"/hello\")\n\tos.Stdout.Write(b)\n}\n"
	for name, body := range map[string]string{"hello": text, "main.go": prog, "go.mod": "module hello\n\ngo 1.21\n",
		"Dockerfile": "FROM scratch\nCOPY prog /prog\nCOPY hello /hello\nCMD [\"/prog\"]\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command(gobin, "build", "-o", "prog", ".")
	build.Dir, build.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the image's program: %v\n%s", err, out)
	}
	tag = "berth-test/rawpush:" + strings.ToLower(rand.Text()[:12])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := imagebuild.Build(ctx, cli, imagebuild.Options{Context: dir, Tag: tag}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true})
	})
	return tag, text
}

func docker(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// The raw push's image, pulled by digest from the registry by the engine
// itself, is the same image (its ID) and runs; a second push sends
// nothing but the manifest.
func TestRawPushPullsAndRuns(t *testing.T) {
	cli := engine(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI")
	}
	tag, text := runnableImage(t, cli)
	reg := newTestRegistry(t)
	p := startProxy(t, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	img, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	layers := len(img.RootFS.Layers)

	var first bytes.Buffer
	res, err := p.RawPush(ctx, cli, tag, "myapp/raw", &first)
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, first.String())
	}
	t.Logf("first push %+v:\n%s", res, first.String())
	if res.Config != img.ID || res.Pushed != layers || res.Skipped != 0 || !strings.HasPrefix(res.Manifest, "sha256:") {
		t.Fatalf("first push: %+v, want config %s and %d layers pushed", res, img.ID, layers)
	}
	if n := countLog(reg.log(), "PUT /v2/myapp/raw/manifests/", "201"); n != 1 {
		t.Errorf("%d manifest puts, want 1: %v", n, reg.log())
	}

	before := len(reg.log())
	var second bytes.Buffer
	again, err := p.RawPush(ctx, cli, tag, "myapp/raw", &second)
	if err != nil {
		t.Fatal(err)
	}
	if again.Manifest != res.Manifest || again.Pushed != 0 || again.Skipped != layers {
		t.Fatalf("second push: %+v, want manifest %s with all %d layers skipped:\n%s", again, res.Manifest, layers, second.String())
	}
	if n := countLog(reg.log()[before:], "POST"); n != 0 {
		t.Errorf("the second push started %d uploads: %v", n, reg.log()[before:])
	}
	if strings.Count(second.String(), "skipped") != layers {
		t.Errorf("second push's progress is not one skipped line per layer:\n%s", second.String())
	}

	// The engine pulls it back (through the plain-HTTP loopback proxy, as
	// an insecure 127.0.0.1 registry) after losing the image.
	if _, err := cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	ref := p.Host() + "/myapp/raw@" + res.Manifest
	docker(t, ctx, "pull", ref)
	t.Cleanup(func() { _, _ = cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true}) })
	if got := docker(t, ctx, "image", "inspect", "--format", "{{.Id}}", ref); got != img.ID {
		t.Fatalf("pulled image ID %s, want %s", got, img.ID)
	}
	if got := docker(t, ctx, "run", "--rm", "--network", "none", ref); got != text {
		t.Fatalf("the pulled image printed %q, want %q", got, text)
	}
}

// saveEngine is the real engine with a save rewritten by edit.
type saveEngine struct {
	*client.Client
	edit func(t *testing.T, save io.Reader) []byte
	t    *testing.T
}

func (s saveEngine) ImageSave(ctx context.Context, ids []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	rc, err := s.Client.ImageSave(ctx, ids, opts...)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.NopCloser(bytes.NewReader(s.edit(s.t, rc))), nil
}

// rewrite copies a tar, passing each entry's name and body through f.
func rewrite(t *testing.T, r io.Reader, f func(hdr *tar.Header, body []byte) []byte) []byte {
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if body = f(hdr, body); body == nil {
			continue
		}
		hdr.Size = int64(len(body))
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestRawPushRefusesBadSaves(t *testing.T) {
	cli := engine(t)
	tag := smallImage(t, cli, 2)
	cases := []struct {
		name string
		edit func(hdr *tar.Header, body []byte) []byte
		want string
		is   error
	}{
		{"a layer's bytes differ from its diffID", func(hdr *tar.Header, body []byte) []byte {
			if strings.HasSuffix(hdr.Name, "/layer.tar") {
				body = append([]byte(nil), body...)
				body[len(body)-1] ^= 0xff
			}
			return body
		}, "has digest", nil},
		{"an OCI layout", func(hdr *tar.Header, body []byte) []byte {
			if hdr.Name == "manifest.json" {
				hdr.Name = "oci-layout"
			}
			return body
		}, "", ErrLayout},
		{"a layer missing", func(hdr *tar.Header, body []byte) []byte {
			if strings.HasSuffix(hdr.Name, "/layer.tar") {
				return nil
			}
			return body
		}, "lacked", ErrLayout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			p := startProxy(t, reg)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			eng := saveEngine{Client: cli, t: t, edit: func(t *testing.T, r io.Reader) []byte { return rewrite(t, r, tc.edit) }}
			_, err := p.RawPush(ctx, eng, tag, "myapp/bad", io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("err = %v, want one saying %q (is %v)", err, tc.want, tc.is)
			}
			if n := countLog(reg.log(), "PUT /v2/myapp/bad/manifests/"); n != 0 {
				t.Errorf("a manifest was put after a bad save: %v", reg.log())
			}
		})
	}
}

// An image that shares layers with one pushed before through the same
// proxy, to another repository, has them mounted there, not sent again,
// and pulls whole.
func TestRawPushMountsSharedLayers(t *testing.T) {
	cli := engine(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI")
	}
	base, _ := runnableImage(t, cli)
	dir := t.TempDir()
	for name, body := range map[string]string{"extra": rand.Text(), "Dockerfile": "FROM " + base + "\nCOPY extra /extra\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	derived := base + "-derived"
	if _, err := imagebuild.Build(ctx, cli, imagebuild.Options{Context: dir, Tag: derived}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = cli.ImageRemove(context.Background(), derived, client.ImageRemoveOptions{Force: true}) })
	reg := newTestRegistry(t)
	p := startProxy(t, reg)
	if _, err := p.RawPush(ctx, cli, base, "shop/base", io.Discard); err != nil {
		t.Fatal(err)
	}
	img, err := cli.ImageInspect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	shared := len(img.RootFS.Layers)
	var out bytes.Buffer
	res, err := p.RawPush(ctx, cli, derived, "shop/derived", &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.Pushed != 1 || res.Skipped != shared || strings.Count(out.String(), "mounted") != shared {
		t.Fatalf("derived push %+v, want its one layer pushed and the %d shared ones mounted:\n%s", res, shared, out.String())
	}
	ref := p.Host() + "/shop/derived@" + res.Manifest
	docker(t, ctx, "pull", ref)
	t.Cleanup(func() { _, _ = cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true}) })
}
