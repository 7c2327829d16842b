package imagepush

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/sirupsen/logrus"
)

// testToken is the credential the test registry wants, as the API's
// admin token.
const testToken = "admin-token-for-tests"

// testRegistry is a real Docker registry (distribution's app, blobs in
// memory) over TLS on 127.0.0.1, behind the check a manager makes: no
// admin credential, 401.
type testRegistry struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []string // "METHOD PATH STATUS"
	// refuse, when it returns a status, answers a request with it instead
	// of the registry.
	refuse func(r *http.Request) int
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	logrus.SetOutput(io.Discard) // the registry logs every request
	cfg := &configuration.Configuration{Storage: configuration.Storage{
		"inmemory":    configuration.Parameters{},
		"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
	}}
	cfg.Log.AccessLog.Disabled = true
	cfg.Log.Level = "error"
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	reg := &testRegistry{}
	reg.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		reg.serve(app, rec, r)
		reg.mu.Lock()
		reg.requests = append(reg.requests, fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, rec.status))
		reg.mu.Unlock()
	}))
	t.Cleanup(func() { reg.srv.Close(); cancel() })
	return reg
}

func (reg *testRegistry) serve(app http.Handler, w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	reg.mu.Lock()
	refuse := reg.refuse
	reg.mu.Unlock()
	if refuse != nil {
		switch status := refuse(r); status {
		case 0:
		case http.StatusUnauthorized:
			registryError(w, status, "UNAUTHORIZED", "authentication required")
			return
		default:
			registryError(w, status, "", "")
			return
		}
	}
	app.ServeHTTP(w, r)
}

// registryError answers as a registry does; a message of "" leaves the
// errors list empty, as a plain proxy's answer would be.
func registryError(w http.ResponseWriter, status int, code, message string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="berth"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if message == "" {
		fmt.Fprint(w, `{"errors":[]}`)
		return
	}
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, message)
}

// log is every request the registry saw, in order.
func (reg *testRegistry) log() []string {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return append([]string(nil), reg.requests...)
}

// countLog counts the requests whose "METHOD PATH STATUS" contains all parts.
func countLog(log []string, parts ...string) int {
	n := 0
	for _, l := range log {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			n++
		}
	}
	return n
}

func (reg *testRegistry) setRefuse(f func(r *http.Request) int) {
	reg.mu.Lock()
	reg.refuse = f
	reg.mu.Unlock()
}

// transport is what the CLI passes: the cluster CA and, with withToken,
// the admin credential.
func (reg *testRegistry) transport(withToken bool) http.RoundTripper {
	base := reg.srv.Client().Transport
	if !withToken {
		return base
	}
	return bearer{base: base, token: testToken}
}

type bearer struct {
	base  http.RoundTripper
	token string
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
