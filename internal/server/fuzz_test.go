package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// The API's request bodies, fuzzed through the decoder and the checks each
// handler makes before it touches the store: whatever arrives, the answer
// is a value or a 4xx with a message, never a panic. `make fuzz` runs each
// target for a bounded time; run one longer with
//
//	go test -run '^$' -fuzz '^FuzzDecodeApp$' -fuzztime 5m ./internal/server

// checkBody decodes body as the handlers do (at most limit bytes, unknown
// fields refused), runs validate on a decoded value, and fails t unless the
// body is accepted or refused with a 4xx that says why.
func checkBody[T any](t *testing.T, body string, limit int64, validate func(*T) error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPut, "/", strings.NewReader(body))
	var v T
	err := decodeJSON(httptest.NewRecorder(), r, limit, &v)
	if err == nil && validate != nil {
		err = validate(&v)
	}
	if err == nil {
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) || ae.status < 400 || ae.status >= 500 || ae.msg == "" {
		t.Fatalf("body %q: error %v is not a 4xx with a message", body, err)
	}
}

// addSeeds adds each seed to f's corpus.
func addSeeds(f *testing.F, seeds ...string) {
	for _, s := range append(seeds, ``, `null`, `[1,2,3]`, `{"a":1}`, `{} {}`, `"x"`) {
		f.Add(s)
	}
}

// FuzzDecodeApp: PUT /v1/apps/{name}.
func FuzzDecodeApp(f *testing.F) {
	addSeeds(f,
		`{"name":"a","services":[{"name":"web","image":"x","replicas":2,"ports":[{"target":80,"published":8080,"protocol":"tcp"}]}]}`,
		`{"services":[{"name":"w","driver":"exec","command":["sleep","1"],"depends_on":[{"service":"w","condition":"service_started","required":true}]}]}`,
		`{"services":[{"name":"w","image":"x","mounts":[{"type":"volume","source":"v","target":"/d"}]}],"volumes":{"v":null}}`,
		`{"secrets":{"s":{"data":"AAAA"}},"services":null}`,
	)
	f.Fuzz(func(t *testing.T, body string) {
		checkBody(t, body, api.MaxAppBytes, func(app *types.App) error {
			if app.Name == "" {
				app.Name = "a" // the handler takes it from the path
			}
			return validateApp(app)
		})
	})
}

// FuzzDecodeScale: POST /v1/apps/{name}/services/{service}/scale. The
// handler's own check is the replica range, made after decoding.
func FuzzDecodeScale(f *testing.F) {
	addSeeds(f, `{"replicas":3}`, `{"replicas":-1}`, `{"replicas":1e99}`, `{"replicas":"3"}`, `{"replicas":3,"x":1}`)
	f.Fuzz(func(t *testing.T, body string) {
		checkBody[api.ScaleRequest](t, body, api.MaxRequestBytes, nil)
	})
}

// FuzzDecodeRegister: an agent's POST /v1/nodes/register.
func FuzzDecodeRegister(f *testing.F) {
	addSeeds(f,
		`{"node":{"name":"a1","address":"127.0.0.1:7710","role":"worker","labels":{"zone":"a"},"drivers":["exec"],"capacity":{"nano_cpus":2000000000,"memory_bytes":1073741824}}}`,
		`{"node":{"id":"0123456789abcdef","name":"a1","role":"manager","status":"down"}}`,
		`{"node":{"name":"","labels":{"":"x"}}}`,
		`{"node":null}`,
	)
	f.Fuzz(func(t *testing.T, body string) {
		checkBody(t, body, api.MaxRequestBytes, func(req *api.RegisterRequest) error { return validateNode(&req.Node) })
	})
}

// FuzzDecodeTaskStatus: an agent's POST /v1/nodes/{id}/status.
func FuzzDecodeTaskStatus(f *testing.F) {
	addSeeds(f,
		`{"tasks":[{"task_id":"t1","state":"running","container_id":"pid:42","started_at":"2026-12-01T10:00:00Z"}]}`,
		`{"tasks":[{"task_id":"t1","state":"exited","exit_code":137,"error":"killed","finished_at":"2026-12-01T10:00:00Z"}]}`,
		`{"tasks":[{"task_id":"","state":"bogus","health":"sick"}]}`,
		`{"tasks":null}`,
	)
	f.Fuzz(func(t *testing.T, body string) {
		checkBody(t, body, api.MaxRequestBytes, func(rep *api.StatusReport) error { return validateStatuses(rep.Tasks) })
	})
}

// FuzzDecodeJoin: POST /v1/cluster/join, the one call a stranger with no
// certificate may make (the token is checked after these checks).
func FuzzDecodeJoin(f *testing.F) {
	addSeeds(f,
		`{"token":"BERTH-1-x-w-y","role":"worker","name":"a1","csr":"LS0tLS0="}`,
		`{"token":"t","role":"manager","name":"m2","raft_addr":"127.0.0.2:7701","api_addr":"127.0.0.2:7700","cluster_addr":"127.0.0.2:7702"}`,
		`{"role":"admin","name":"x"}`,
		`{"role":"manager","name":"m","raft_addr":"::::","api_addr":"[::1]:99999"}`,
	)
	f.Fuzz(func(t *testing.T, body string) {
		checkBody(t, body, api.MaxRequestBytes, func(req *api.JoinRequest) error {
			if _, err := nodeRole(req.Role); err != nil {
				return err
			}
			return validateManagerAddrs(*req)
		})
	})
}
