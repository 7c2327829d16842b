package docker

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/driver"
)

// TestLogsSinceUntil proves that Since and Until reach the engine, which
// keeps each line's time: a task writes a line when it starts and more when
// it is stopped; a bound between the two keeps one side.
func TestLogsSinceUntil(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	cfg := e.task("web", 1, nil)
	e.start(d, cfg)
	id := cfg.Task.ID

	// Wait for the first line by following the log, not by sleeping.
	ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(d.Logs(ctx, id, driver.LogOptions{Follow: true}, pw)) }()
	sc := bufio.NewScanner(pr)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "listening on") {
	}
	cancel()
	_ = pr.Close()
	if err := d.Stop(e.ctx, id, 10*time.Second, ""); err != nil {
		t.Fatal(err)
	}

	var all strings.Builder
	if err := d.Logs(e.ctx, id, driver.LogOptions{Timestamps: true}, &all); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(all.String()), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "listening on") {
		t.Fatalf("want the start line and the stop's lines, got:\n%s", all.String())
	}
	t1, t2 := lineTime(t, lines[0]), lineTime(t, lines[1])
	mid := t1.Add(t2.Sub(t1) / 2)
	if !t2.After(t1) {
		t.Fatalf("the stop's line (%s) is not after the start's (%s)", t2, t1)
	}
	tests := []struct {
		name      string
		o         driver.LogOptions
		want, not string
	}{
		{"since", driver.LogOptions{Since: mid}, "signal received", "listening on"},
		{"until", driver.LogOptions{Until: mid}, "listening on", "signal received"},
		{"window before all", driver.LogOptions{Since: t1.Add(-time.Hour), Until: t1.Add(-time.Minute)}, "", "listening on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := d.Logs(e.ctx, id, tt.o, &b); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tt.want) || strings.Contains(b.String(), tt.not) {
				t.Errorf("logs = %q, want %q and not %q", b.String(), tt.want, tt.not)
			}
		})
	}
}

func lineTime(t *testing.T, line string) time.Time {
	t.Helper()
	ts, _, _ := strings.Cut(line, " ")
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.Fatalf("line %q has no timestamp: %v", line, err)
	}
	return at
}
