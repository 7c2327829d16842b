package agent

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLogOptionsSinceUntil(t *testing.T) {
	at := time.Date(2026, 11, 25, 2, 0, 0, 500, time.UTC)
	tests := []struct {
		query        string
		since, until time.Time
		err          string
	}{
		{"", time.Time{}, time.Time{}, ""},
		{"since=2026-11-25T02:00:00.0000005Z", at, time.Time{}, ""},
		{"until=2026-11-25T02:00:00.0000005Z", time.Time{}, at, ""},
		{"since=2026-11-25T01:00:00Z&until=2026-11-25T02:00:00.0000005Z", at.Add(-time.Hour - 500), at, ""},
		{"since=10m", time.Time{}, time.Time{}, `since must be an RFC 3339 time, not "10m"`},
		{"until=yesterday", time.Time{}, time.Time{}, `until must be an RFC 3339 time`},
		{"since=2026-11-25T03:00:00Z&until=2026-11-25T02:00:00Z", time.Time{}, time.Time{}, "until (2026-11-25T02:00:00Z) is before since"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			o, err := logOptions(httptest.NewRequest(http.MethodGet, "/x?"+tt.query, nil))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !o.Since.Equal(tt.since) || !o.Until.Equal(tt.until) {
				t.Errorf("since %s, until %s, err %v; want %s, %s", o.Since, o.Until, err, tt.since, tt.until)
			}
		})
	}
}
