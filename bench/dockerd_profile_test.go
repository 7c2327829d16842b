package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// dockerdProfile starts a CPU profile of the engine on the default socket
// when BERTH_DOCKERD_PROFILE names a directory, for the engine's own
// /debug/pprof (served by dockerd 20.10 on its API socket), and returns a
// function that waits for it and writes it to DIR/NAME.pprof. The profile
// lasts BERTH_DOCKERD_PROFILE_SECONDS (default 12 s), which is shorter
// than a timed part here, so it covers the starts and not the cleanup:
// the engine's CPU for berth's containers against docker run's is the gap
// docs/benchmarks.md could not explain from berth's side.
//
//	BERTH_DOCKERD_PROFILE=/tmp/dp go test -run '^$' -bench Converge100 -benchtime 1x ./bench/
//	go tool pprof -top /tmp/dp/berth.pprof
func dockerdProfile(b *testing.B, name string) (wait func()) {
	dir := os.Getenv("BERTH_DOCKERD_PROFILE")
	if dir == "" {
		return func() {}
	}
	secs := 12
	if s := os.Getenv("BERTH_DOCKERD_PROFILE_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 600 {
			b.Fatalf("BERTH_DOCKERD_PROFILE_SECONDS=%q: want whole seconds from 1 to 600", s)
		}
		secs = n
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fetchDockerdProfile(filepath.Join(dir, name+".pprof"), secs) }()
	return func() {
		if err := <-done; err != nil {
			b.Logf("no engine profile for %s: %v", name, err)
		}
	}
}

func fetchDockerdProfile(path string, secs int) error {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", "/var/run/docker.sock")
		},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://engine/debug/pprof/profile?seconds=%d", secs), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the engine answered %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
