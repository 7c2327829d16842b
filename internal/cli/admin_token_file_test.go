package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServerAdminTokenFile: a supervised first manager (the local machine
// driver's) has a log file for stdout, so --admin-token-file puts the new
// cluster's admin token in a file only its owner reads, and not on stdout.
func TestServerAdminTokenFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real manager")
	}
	addr := strings.TrimPrefix(closedAddr(t), "http://")
	raftAddr := strings.TrimPrefix(closedAddr(t), "http://")
	clusterAddr := strings.TrimPrefix(closedAddr(t), "http://")
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"server", "--addr", addr, "--raft-addr", raftAddr, "--cluster-addr", clusterAddr,
			"--data-dir", t.TempDir(), "--admin-token-file", tokenFile}, h.e)
	}()
	var tok []byte
	waitWithin(t, 60*time.Second, func() bool {
		tok, _ = os.ReadFile(tokenFile)
		return strings.HasSuffix(string(tok), "\n")
	})
	if !strings.HasPrefix(string(tok), "BERTHADM-") {
		t.Fatalf("token file holds %q", tok)
	}
	if st, err := os.Stat(tokenFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if out := h.out.String(); strings.Contains(out, strings.TrimSpace(string(tok))) || strings.Contains(out, "Created a new cluster") {
		t.Errorf("the token went to stdout too:\n%s", out)
	}
	cancel()
	select {
	case <-code:
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop within 30s of its context ending")
	}
}
