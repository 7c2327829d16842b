package cli

import (
	"strings"
	"testing"
)

func TestPortAndImages(t *testing.T) {
	_, url := newFakeManager(t)
	h := newHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("up: exit %d: %s", code, h.errOut)
	}
	cases := []struct {
		name    string
		args    []string
		code    int
		out     string // exact stdout
		errHas  string // in stderr
		outHas  []string
		outNone []string
	}{
		{name: "published", args: []string{"port", "web", "80"}, out: "127.0.0.1:8080\n"},
		{name: "not published", args: []string{"port", "web", "81"}, code: 1, errHas: "service web publishes no port 81/tcp"},
		{name: "other protocol", args: []string{"port", "web", "80", "--protocol", "udp"}, code: 1, errHas: "no port 80/udp"},
		{name: "bad protocol", args: []string{"port", "web", "80", "--protocol", "sctp"}, code: 1, errHas: `invalid --protocol "sctp"`},
		{name: "bad port", args: []string{"port", "web", "http"}, code: 1, errHas: `invalid port "http"`},
		{name: "no service", args: []string{"port", "nope", "80"}, code: 1, errHas: "app hello has no service nope"},
		{name: "images", args: []string{"images"},
			outHas: []string{"CONTAINER     REPOSITORY   TAG      PULLED FROM\n", "hello-web-1", "hello-web-2", "hello-web-2   nginx        latest   nginx\n", "hello-api-1   hello-api    latest   hello/api@sha256:"}},
		{name: "images of one service", args: []string{"images", "web"}, outHas: []string{"hello-web-1"}, outNone: []string{"hello-api"}},
		{name: "images quiet", args: []string{"images", "-q"}, out: "hello-api\nnginx\n"},
		{name: "images no service", args: []string{"images", "nope"}, code: 1, errHas: "app hello has no service nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if code := h.run(t, append(c.args, "--addr", url)...); code != c.code {
				t.Fatalf("exit %d, want %d: %s", code, c.code, h.errOut)
			}
			got := h.out.String()
			if c.out != "" && got != c.out {
				t.Errorf("stdout = %q, want %q", got, c.out)
			}
			if !strings.Contains(h.errOut.String(), c.errHas) {
				t.Errorf("stderr = %q, want %q in it", h.errOut, c.errHas)
			}
			for _, s := range c.outHas {
				if !strings.Contains(got, s) {
					t.Errorf("stdout %q lacks %q", got, s)
				}
			}
			for _, s := range c.outNone {
				if strings.Contains(got, s) {
					t.Errorf("stdout %q has %q", got, s)
				}
			}
		})
	}
}

func TestSplitImageRef(t *testing.T) {
	for _, c := range []struct{ ref, repo, tag string }{
		{"nginx", "nginx", "latest"},
		{"nginx:1.27", "nginx", "1.27"},
		{"127.0.0.1:5000/web", "127.0.0.1:5000/web", "latest"},
		{"127.0.0.1:5000/web:v2@sha256:ab", "127.0.0.1:5000/web", "v2"},
	} {
		if repo, tag := splitImageRef(c.ref); repo != c.repo || tag != c.tag {
			t.Errorf("splitImageRef(%q) = %q, %q; want %q, %q", c.ref, repo, tag, c.repo, c.tag)
		}
	}
}
