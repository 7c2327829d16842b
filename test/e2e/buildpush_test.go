package e2e

import (
	"strings"
	"testing"

	h "github.com/berth-dev/berth/test/e2e/harness"
)

// TestBuildAndPush: berth build builds a service's image on the engine
// (again, every step, with --no-cache), an unknown service is named, and
// push on the dev cluster, whose node uses this engine, pushes nothing and
// says why.
func TestBuildAndPush(t *testing.T) {
	h.RequireDocker(t)
	const project = "e2e-build"
	img := h.TestImage(t)
	dir := t.TempDir()
	tag := "berth-e2e/build:" + imageTag(img)
	file := h.WriteFile(t, dir, "compose.yaml", `services:
  made:
    build:
      context: ./made
    image: `+tag+`
`)
	h.WriteFile(t, dir, "made/Dockerfile", "FROM "+img+"\nENV MESSAGE=built-by-berth-build\n")
	t.Cleanup(func() { _, _ = h.Docker("image", "rm", "-f", tag) })
	c := h.StartCluster(t, berthBin)

	c.MustRun(t, dir, "-f", file, "-p", project, "build")
	env, err := h.Docker("image", "inspect", "--format", "{{json .Config.Env}}", tag)
	if err != nil || !strings.Contains(env, "MESSAGE=built-by-berth-build") {
		t.Fatalf("the built image's env = %q, %v; want the Dockerfile's MESSAGE", env, err)
	}
	again := c.MustRun(t, dir, "-f", file, "-p", project, "build", "--no-cache", "made")
	if strings.Contains(again.Stderr, "Using cache") {
		t.Errorf("build --no-cache used the cache:\n%s", again.Stderr)
	}
	if r := c.Run(t, dir, "-f", file, "-p", project, "build", "nope"); r.Code != 1 || !strings.Contains(r.Stderr, "has no service nope") {
		t.Errorf("build of an unknown service: %s", r)
	}
	push := c.MustRun(t, dir, "-f", file, "-p", project, "push")
	if !strings.Contains(push.Stderr, "Not pushing the images of made") {
		t.Errorf("push on the dev cluster:\n%s", push.Stderr)
	}
}
