package cli

import (
	"context"
	"errors"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
)

// TestAdminTokenNotice: the hint to create a context names https only for
// a secured API; a plain-HTTP loopback API gets no https hint.
func TestAdminTokenNotice(t *testing.T) {
	tests := []struct {
		name, url, want, never string
	}{
		{"secured", "https://10.0.0.5:7700", "berth context create NAME --addr https://10.0.0.5:7700 --ca /d/pki/ca.crt", "plain HTTP"},
		{"loopback", "http://127.0.0.1:7700", "BERTH_TOKEN=<admin token> berth --addr http://127.0.0.1:7700", "https://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := adminTokenNotice("TOKEN", tt.url, "/d/pki/ca.crt")
			if !strings.Contains(got, tt.want) || strings.Contains(got, tt.never) || !strings.Contains(got, "TOKEN") {
				t.Fatalf("notice:\n%s\nwant %q, never %q", got, tt.want, tt.never)
			}
		})
	}
}

// TestAdminTokenWhereHelpAndDocsAgree: `berth server --help` and
// docs/cli.md say the same about where the admin token is printed.
func TestAdminTokenWhereHelpAndDocsAgree(t *testing.T) {
	docs, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	if code := h.run(t, "server", "--help"); code != 0 {
		t.Fatalf("server --help: exit %d", code)
	}
	norm := func(s string) string { return regexp.MustCompile(`\s+`).ReplaceAllString(s, " ") }
	const where = "printed once on stdout (never in the log)"
	if !strings.Contains(norm(h.out.String()), where) {
		t.Errorf("server --help does not say the admin token is %s:\n%s", where, h.out)
	}
	if !strings.Contains(norm(string(docs)), "admin token is printed once, on stdout (never in the log)") {
		t.Errorf("docs/cli.md does not say the admin token is %s", where)
	}
	if strings.Contains(norm(string(docs)), "in the log on stderr") {
		t.Errorf("docs/cli.md still says the admin token is in the log")
	}
}

// TestServerNoticeMatchesItsAPI runs a new cluster's manager on loopback:
// the hint it prints names the scheme its API really speaks (a plain-HTTP
// API got a `context create --addr https://...` hint).
func TestServerNoticeMatchesItsAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real manager")
	}
	addr := strings.TrimPrefix(closedAddr(t), "http://")
	raftAddr := strings.TrimPrefix(closedAddr(t), "http://")
	clusterAddr := strings.TrimPrefix(closedAddr(t), "http://")
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"server", "--addr", addr, "--raft-addr", raftAddr, "--cluster-addr", clusterAddr,
			"--data-dir", t.TempDir()}, h.e)
	}()
	waitWithin(t, 60*time.Second, func() bool { return strings.Contains(h.out.String(), "Created a new cluster") })
	notice := h.out.String()
	// With its token, a plain-HTTP API answers a plain-HTTP request; a
	// secured one refuses it whatever the credential.
	plain := api.NewClient("http://"+addr, api.WithToken(adminTokenIn(notice)))
	var plainErr error
	waitWithin(t, 60*time.Second, func() bool {
		_, plainErr = plain.Status(ctx)
		var apiErr *api.Error
		return !errors.As(plainErr, &apiErr) || apiErr.Status != http.StatusServiceUnavailable
	})
	switch speaksHTTP := plainErr == nil; {
	case speaksHTTP && strings.Contains(notice, "https://"):
		t.Errorf("the API speaks plain HTTP, the notice says https:\n%s", notice)
	case !speaksHTTP && !strings.Contains(notice, "--addr https://"+addr):
		t.Errorf("the API is secured (%v), the notice gives no https context hint:\n%s", plainErr, notice)
	}
	cancel()
	select {
	case <-code:
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop within 30s of its context ending")
	}
}
