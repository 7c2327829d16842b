package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
)

// TestMachinesThroughAPI: a machine record is put, listed, read, replaced
// and deleted; bad records are 400s naming the field; a missing one is a
// 404; no credential, no answer.
func TestMachinesThroughAPI(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	created := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	m := api.Machine{Name: "a1", Driver: "local", Role: "agent", Labels: map[string]string{"zone": "x"},
		Address: "10.210.0.3", DockerHost: "unix:///run/berth/a1/docker.sock", Created: created}
	got, err := c.PutMachine(ctx, m)
	if err != nil || got.Name != "a1" || got.Address != "10.210.0.3" || !got.Created.Equal(created) {
		t.Fatalf("put a1: %+v, %v", got, err)
	}
	if _, err := c.PutMachine(ctx, api.Machine{Name: "m1", Driver: "local", Role: "manager"}); err != nil {
		t.Fatal(err)
	}
	ms, err := c.Machines(ctx)
	if err != nil || len(ms) != 2 || ms[0].Name != "a1" || ms[1].Name != "m1" || ms[0].Labels["zone"] != "x" {
		t.Fatalf("machines = %+v, %v; want a1 (zone=x) and m1", ms, err)
	}
	m.Address = "10.210.0.9"
	if _, err := c.PutMachine(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Machine(ctx, "a1"); err != nil || got.Address != "10.210.0.9" {
		t.Fatalf("a1 after a replace: %+v, %v", got, err)
	}
	if err := c.DeleteMachine(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Machine(ctx, "a1"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("a1 after delete: %v, want not found", err)
	}
	if err := c.DeleteMachine(ctx, "a1"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("second delete: %v, want not found", err)
	}

	for _, tc := range []struct {
		name, path, body, field string
	}{
		{"upper-case name", "A1", `{"driver":"local","role":"agent"}`, "name"},
		{"name with a dot", "a.1", `{"driver":"local","role":"agent"}`, "name"},
		{"name longer than a label", strings.Repeat("a", 64), `{"driver":"local","role":"agent"}`, "name"},
		{"names differ", "a2", `{"name":"a3","driver":"local","role":"agent"}`, "name"},
		{"no driver", "a2", `{"role":"agent"}`, "driver"},
		{"bad role", "a2", `{"driver":"local","role":"boss"}`, "role"},
		{"bad label key", "a2", `{"driver":"local","role":"agent","labels":{"-x":"1"}}`, "labels.-x"},
		{"long label value", "a2", `{"driver":"local","role":"agent","labels":{"k":"` + strings.Repeat("v", 300) + `"}}`, "labels.k"},
		{"unknown field", "a2", `{"driver":"local","role":"agent","local":{"netns":"x"}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, field := putRaw(t, s, tc.path, tc.body, s.AdminToken())
			if status != http.StatusBadRequest || (tc.field != "" && field != tc.field) {
				t.Fatalf("PUT %s %s: %d field %q, want 400 naming %q", tc.path, tc.body, status, field, tc.field)
			}
		})
	}
	if status, _ := putRaw(t, s, "a2", `{"driver":"local","role":"agent"}`, ""); status != http.StatusUnauthorized {
		t.Fatalf("PUT without a credential: %d, want 401", status)
	}
}

func putRaw(t *testing.T, s *Server, name, body, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+s.Addr()+"/v1/machines/"+name, bytes.NewBufferString(body))
	if token != "" {
		req.Header.Set(api.HeaderAuthorization, "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb api.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	return resp.StatusCode, eb.Field
}

// TestMachinesBounded: the cluster keeps a bounded number of records; a
// record of a name already kept can still be replaced.
func TestMachinesBounded(t *testing.T) {
	old := maxMachines
	maxMachines = 2
	t.Cleanup(func() { maxMachines = old })
	_, c := startServer(t)
	ctx := context.Background()
	for _, n := range []string{"a1", "a2"} {
		if _, err := c.PutMachine(ctx, api.Machine{Name: n, Driver: "local", Role: "agent"}); err != nil {
			t.Fatal(err)
		}
	}
	var ae *api.Error
	if _, err := c.PutMachine(ctx, api.Machine{Name: "a3", Driver: "local", Role: "agent"}); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("a third record: %v, want 409", err)
	}
	if _, err := c.PutMachine(ctx, api.Machine{Name: "a2", Driver: "local", Role: "agent", Address: "10.0.0.9"}); err != nil {
		t.Fatalf("replacing a2 at the limit: %v", err)
	}
}
