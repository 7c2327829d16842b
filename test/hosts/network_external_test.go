package hosts

import (
	"fmt"
	"strings"
	"testing"
	"time"

	h "github.com/berth-dev/berth/test/e2e/harness"
)

// externalApp is an app of one service, svc, pinned to host; on the
// cluster network "shared" (declared external) when shared is set, else
// on its own default network only.
// With volume set it also mounts the named volume "data" (pinned to host).
func externalApp(img, dir, svc, host string, shared, volume bool) string {
	r := replica(img, dir, svc)
	if volume {
		r = strings.Replace(r, `:/rec"]`, `:/rec", "data:/data"]`, 1)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "services:\n  %s:\n%s", svc, r)
	fmt.Fprintf(&b, "    deploy: {placement: {constraints: [node.hostname==%s]}}\n", host)
	if shared {
		b.WriteString("    networks: [default, shared]\nnetworks:\n  shared: {external: true}\n")
	}
	if volume {
		b.WriteString("volumes:\n  data: {}\n")
	}
	return b.String()
}

// TestExternalNetworkAcrossHosts is issue 17's isolation bullet with
// issue 19's berth network: two apps on different hosts that both
// declare a network made with berth network create reach each other by
// service name across hosts; a third app that does not join it can
// neither resolve nor reach them; the network cannot be removed while
// they declare it. Names end in a dot (only berth's DNS answers them) and
// traffic goes only between the test's hosts.
func TestExternalNetworkAcrossHosts(t *testing.T) {
	needHosts(t)
	img := h.TestImage(t)
	n := newNetCluster(t, "bx")
	start := time.Now()

	// Compose's own wording for a network nobody made.
	file := h.WriteFile(t, t.TempDir(), "xa.yaml", externalApp(img, n.dir, "alpha", "a2", true, true))
	if r := n.c.run(t, "up", "-p", "xa", "-f", file); r.Code == 0 ||
		!strings.Contains(r.Stderr, "network shared declared as external, but could not be found; run berth network create shared") {
		t.Fatalf("up before network create: exit %d, stderr:\n%s", r.Code, r.Stderr)
	}
	out := n.c.must(t, "network", "create", "shared").Stdout
	t.Logf("%s", strings.TrimSpace(out))

	n.up(t, "xa", externalApp(img, n.dir, "alpha", "a2", true, true))
	n.up(t, "xb", externalApp(img, n.dir, "beta", "a3", true, false))
	n.up(t, "xc", externalApp(img, n.dir, "gamma", "a1", false, false))
	for _, w := range []struct{ app, svc, key, host string }{
		{"xa", "alpha", "shared", "a2"}, {"xb", "beta", "shared", "a3"}, {"xc", "gamma", "xc_default", "a1"},
	} {
		h.WaitFor(t, time.Minute, w.svc+" serving on "+w.key, n.serving(w.app, w.svc, 1, w.key, w.host))
	}
	alpha, beta, gamma := n.tasks(t, "xa", "alpha")[0], n.tasks(t, "xb", "beta")[0], n.tasks(t, "xc", "gamma")[0]

	var g getResult
	n.must(t, beta, 30*time.Second, &g, "get", "http://alpha.:8080/whoami", "-n", "5")
	if g.OK != 5 || g.By[alpha.ContainerID[:12]] != 5 {
		t.Errorf("beta (app xb on a3) to alpha (app xa on a2) by name: %+v, want 5 answers from alpha", g)
	}
	n.must(t, alpha, 30*time.Second, &g, "get", "http://beta.:8080/whoami", "-n", "5")
	if g.OK != 5 || g.By[beta.ContainerID[:12]] != 5 {
		t.Errorf("alpha to beta by name: %+v, want 5 answers from beta", g)
	}

	// gamma, on no shared network, sees neither name nor address.
	notFound(t, n, gamma, "alpha.")
	notFound(t, n, gamma, "beta.")
	unreachable(t, n, gamma, "alpha's address on shared", alpha.Addresses["shared"])
	// Nor does the shared network open the apps' own networks.
	unreachable(t, n, beta, "alpha's address on xa_default", alpha.Addresses["xa_default"])

	if r := n.c.run(t, "network", "rm", "shared"); r.Code == 0 || !strings.Contains(r.Stderr, "network shared is in use by app xa, xb") {
		t.Errorf("network rm while in use: exit %d, stderr:\n%s", r.Code, r.Stderr)
	}
	ls := n.c.must(t, "network", "ls").Stdout
	if !strings.Contains(ls, "shared") || !strings.Contains(ls, "xa,xb") || !strings.Contains(ls, "xc_default") {
		t.Errorf("network ls:\n%s", ls)
	}

	// berth volume: alpha's volume is on a2; rm waits for its task, then
	// a2's agent removes the copy from its engine.
	if ls := n.c.must(t, "volume", "ls").Stdout; !strings.Contains(ls, "xa_data") || !strings.Contains(ls, "a2") {
		t.Errorf("volume ls:\n%s", ls)
	}
	if _, err := n.docker("a2", 10*time.Second, "volume", "inspect", "xa_data"); err != nil {
		t.Fatalf("alpha's volume is not on a2: %v", err)
	}
	if r := n.c.run(t, "volume", "rm", "xa_data"); r.Code == 0 || !strings.Contains(r.Stderr, "volume xa_data is in use by task xa-alpha-1") {
		t.Errorf("volume rm while alpha runs: exit %d, stderr:\n%s", r.Code, r.Stderr)
	}
	n.c.must(t, "scale", "-p", "xa", "alpha=0")
	h.WaitFor(t, time.Minute, "alpha's task ended", func() error {
		if r := n.c.run(t, "volume", "rm", "xa_data"); r.Code != 0 {
			return fmt.Errorf("volume rm: %s", strings.TrimSpace(r.Stderr))
		}
		return nil
	})
	h.WaitFor(t, 30*time.Second, "a2 removed xa_data", func() error {
		if out, err := n.docker("a2", 10*time.Second, "volume", "inspect", "xa_data"); err == nil {
			return fmt.Errorf("xa_data still on a2: %s", out)
		}
		return nil
	})
	t.Logf("external network across hosts: %.1fs after the cluster was made", time.Since(start).Seconds())
}
