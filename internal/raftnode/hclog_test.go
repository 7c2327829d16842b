package raftnode

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func attrs(rec slog.Record) map[string]string {
	m := map[string]string{}
	rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	return m
}

func TestHCLogAdapter(t *testing.T) {
	rec := &recorder{}
	l := newHCLogger(slog.New(rec), "raft").Named("wal").With("dir", "/d")
	l.Trace("dropped")
	l.Debug("dropped")
	l.Info("routine", "term", 2)
	l.Warn("notable")
	l.Error("broken")
	l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}).Print("from std log")

	want := []struct {
		msg   string
		level slog.Level
	}{
		{"routine", slog.LevelDebug}, {"notable", slog.LevelInfo},
		{"broken", slog.LevelError}, {"from std log", slog.LevelError},
	}
	if len(rec.records) != len(want) {
		t.Fatalf("got %d records, want %d", len(rec.records), len(want))
	}
	for i, w := range want {
		r := rec.records[i]
		if r.Message != w.msg || r.Level != w.level {
			t.Errorf("record %d = %q at %v, want %q at %v", i, r.Message, r.Level, w.msg, w.level)
		}
		if a := attrs(r); a["component"] != "raft.wal" || a["dir"] != "/d" {
			t.Errorf("record %d attrs = %v, want component raft.wal and dir /d", i, a)
		}
	}
	if a := attrs(rec.records[0]); a["term"] != "2" {
		t.Errorf("call args lost: %v", a)
	}
	if l.IsDebug() || !l.IsInfo() {
		t.Error("the adapter should report info as its level")
	}
}
