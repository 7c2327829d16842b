package testkit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunCLI(t *testing.T) {
	t.Setenv("BERTH_ADDR", "http://users-own:7700")
	home := t.TempDir()
	tests := []struct {
		name     string
		timeout  time.Duration
		script   string
		wantCode int
		wantOut  string
		wantErr  error
	}{
		{"exit code", time.Minute, "echo out; exit 3", 3, "out\n", nil},
		{"isolated from the user's berth", time.Minute, `echo "$HOME|$XDG_CONFIG_HOME|$BERTH_ADDR|$EXTRA"`, 0,
			home + "|" + filepath.Join(home, "config") + "||x\n", nil},
		{"killed after the timeout", 100 * time.Millisecond, "echo started; exec sleep 30", 0, "started\n", ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := RunCLI(t, tt.timeout, "/bin/sh", home, home, []string{"EXTRA=x"}, "-c", tt.script)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			// A killed command has no exit code of its own; its output so
			// far is kept.
			if tt.wantErr == nil && r.Code != tt.wantCode {
				t.Errorf("exit %d, want %d", r.Code, tt.wantCode)
			}
			if r.Stdout != tt.wantOut {
				t.Errorf("stdout %q, want %q", r.Stdout, tt.wantOut)
			}
		})
	}
}

func TestPoll(t *testing.T) {
	calls := 0
	if err := Poll(time.Minute, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || calls != 3 {
		t.Fatalf("Poll = %v after %d calls, want nil after 3", err, calls)
	}
	last := errors.New("the last reason")
	err := Poll(10*time.Millisecond, func() error { return last })
	if !errors.Is(err, last) || !strings.Contains(err.Error(), "still not so after 10ms") {
		t.Fatalf("Poll timing out = %v, want it to wrap the last reason", err)
	}
}

func TestReadContexts(t *testing.T) {
	home := t.TempDir()
	if _, _, err := ReadContexts(home); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadContexts without a file = %v, want not-exist", err)
	}
	dir := filepath.Join(home, "config", "berth")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The shape internal/cli writes (contextstore.go), key material and all.
	file := `{"current": "c1", "contexts": {"c1": {"addr": "https://127.0.0.1:7700", "ca_pem": "CA", "token": "T", "cert_pem": "C", "key_pem": "K"}}}`
	if err := os.WriteFile(filepath.Join(dir, "contexts.json"), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cur, ctxs, err := ReadContexts(home)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Context{Addr: "https://127.0.0.1:7700", CAPEM: "CA", Token: "T"}); cur != "c1" || ctxs["c1"] != want {
		t.Errorf("ReadContexts = %q, %+v; want c1, %+v", cur, ctxs, want)
	}
}
