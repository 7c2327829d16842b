package server

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// TestWriteJSONListAsWriteJSON: a list written an element at a time is
// byte for byte what writeJSON writes for it, empty and nil lists too.
func TestWriteJSONListAsWriteJSON(t *testing.T) {
	code := 1
	for _, tc := range []struct {
		name  string
		tasks []*types.Task
	}{
		{"nil", nil},
		{"empty", []*types.Task{}},
		{"one", []*types.Task{{ID: "t1", App: "a<b>", Service: "web", State: types.TaskRunning, CreatedAt: time.Unix(1, 0).UTC()}}},
		{"several", []*types.Task{{ID: "t1"}, {ID: "t2", ExitCode: &code, Addresses: map[string]string{"a_default": "10.0.0.2"}}, {ID: "t3"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, got := httptest.NewRecorder(), httptest.NewRecorder()
			writeJSON(want, 200, tc.tasks)
			writeJSONList(got, 200, tc.tasks)
			if got.Body.String() != want.Body.String() || got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Errorf("writeJSONList wrote %d %q, writeJSON %d %q", got.Code, got.Body, want.Code, want.Body)
			}
		})
	}
}
