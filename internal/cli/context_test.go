package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/credfile"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/types"
)

// contextHarness is a harness whose config directory is a fresh temp dir.
func contextHarness(t *testing.T) (*harness, string) {
	h := newHarness(t)
	cfg := t.TempDir()
	h.envVars["XDG_CONFIG_HOME"] = cfg
	return h, filepath.Join(cfg, "berth", "contexts.json")
}

func TestContextLifecycle(t *testing.T) {
	h, path := contextHarness(t)
	ca := writeFile(t, "ca.crt", testCA(t).CertPEM)
	steps := []struct {
		args    []string
		code    int
		stdout  string // substring
		stderr  string // substring
		current string // after the step
	}{
		{[]string{"context", "show"}, 0, "default\n", "", ""},
		{[]string{"context", "create", "local", "--addr", "127.0.0.1:7800"}, 0, "Created context local (http://127.0.0.1:7800)", "", ""},
		{[]string{"context", "create", "prod", "--addr", "10.0.0.5:7700", "--ca", ca, "--token", "bta_secret"}, 0,
			"Created context prod (https://10.0.0.5:7700); switch to it with: berth context use prod", "", ""},
		{[]string{"context", "create", "prod", "--addr", "http://x:1"}, 1, "", "context prod exists", ""},
		{[]string{"context", "create", "default", "--addr", "http://x:1"}, 1, "", "reserved", ""},
		{[]string{"context", "create", "bad/name", "--addr", "http://x:1"}, 1, "", "invalid context name", ""},
		{[]string{"context", "create", "noaddr"}, 1, "", "needs the manager's address", ""},
		{[]string{"context", "use", "nope"}, 1, "", "no context named nope", ""},
		{[]string{"context", "use", "prod"}, 0, "Current context is now prod", "", "prod"},
		{[]string{"context", "show"}, 0, "prod\n", "", "prod"},
		{[]string{"context", "ls"}, 0, "NAME      ADDR                    CREDENTIAL\n" +
			"default   http://127.0.0.1:1      none\n" +
			"local     http://127.0.0.1:7800   none\n" +
			"prod *    https://10.0.0.5:7700   token\n", "", "prod"},
		{[]string{"context", "rm", "local", "nope"}, 1, "", "no context named nope; nothing was removed", "prod"},
		{[]string{"context", "rm", "prod"}, 0, "Removed context prod\nNo context is current now", "", ""},
		{[]string{"context", "use", "local"}, 0, "", "", "local"},
		{[]string{"context", "use", "default"}, 0, "Current context is now default", "", ""},
	}
	for _, s := range steps {
		h.out.b.Reset()
		h.errOut.b.Reset()
		if code := h.run(t, s.args...); code != s.code {
			t.Fatalf("%v: exit %d, want %d; stderr: %s", s.args, code, s.code, h.errOut)
		}
		if !strings.Contains(h.out.String(), s.stdout) || !strings.Contains(h.errOut.String(), s.stderr) {
			t.Fatalf("%v:\nstdout %q, want %q\nstderr %q, want %q", s.args, h.out, s.stdout, h.errOut, s.stderr)
		}
		if f := readContexts(t, path); f.Current != s.current {
			t.Fatalf("%v: current = %q, want %q", s.args, f.Current, s.current)
		}
	}
	if _, ok := readContexts(t, path).Contexts["local"]; !ok {
		t.Errorf("context local was lost")
	}
}

func TestContextFileIsPrivate(t *testing.T) {
	h, path := contextHarness(t)
	// A file left with loose permissions (by hand, say) is replaced by a
	// private one on the next write.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"contexts":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := h.run(t, "context", "create", "prod", "--addr", "https://10.0.0.5:7700", "--token", "bta_secret"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("contexts.json mode = %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if c := readContexts(t, path).Contexts["prod"]; c == nil || c.Token != "bta_secret" {
		t.Errorf("prod = %+v, want its token stored", c)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".contexts-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	h, path = contextHarness(t) // a fresh directory is created 0700
	if code := h.run(t, "context", "create", "a", "--addr", "http://127.0.0.1:7700"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("config dir mode = %v (%v), want 0700", st.Mode().Perm(), err)
	}
}

func TestContextStoreLocation(t *testing.T) {
	tests := []struct {
		env     map[string]string
		want    string
		wantErr bool
	}{
		{map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/berth/contexts.json", false},
		{map[string]string{"HOME": "/h"}, "/h/.config/berth/contexts.json", false},
		{map[string]string{}, "", true},
	}
	for _, tc := range tests {
		e := &env{getenv: func(k string) string { return tc.env[k] }}
		s, err := e.contextStore()
		if tc.wantErr {
			if err == nil {
				t.Errorf("%v: no error", tc.env)
			}
			continue
		}
		if err != nil || s.path != tc.want {
			t.Errorf("%v: path %v (%v), want %s", tc.env, s, err, tc.want)
		}
	}
}

func TestContextDamagedFile(t *testing.T) {
	h, path := contextHarness(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := h.run(t, "ls"); code != 1 || !strings.Contains(h.errOut.String(), "is damaged") {
		t.Errorf("exit %d, stderr %q; want the damaged file named", code, h.errOut)
	}
}

func TestNewClusterContext(t *testing.T) {
	ca := writeFile(t, "ca.crt", testCA(t).CertPEM)
	notPEM := writeFile(t, "junk", []byte("junk"))
	cert, key := adminCert(t, testCA(t))
	tests := []struct {
		name     string
		in       contextInput
		wantAddr string
		wantErr  string
	}{
		{"plain", contextInput{addr: "127.0.0.1:7700"}, "http://127.0.0.1:7700", ""},
		{"https implied by token", contextInput{addr: "10.0.0.5:7700", token: "t"}, "https://10.0.0.5:7700", ""},
		{"trailing slash", contextInput{addr: "https://h:7700/", caFile: ca}, "https://h:7700", ""},
		{"cert and key", contextInput{addr: "https://h:7700", caFile: ca, certFile: cert, keyFile: key}, "https://h:7700", ""},
		{"token over http", contextInput{addr: "http://10.0.0.5:7700", token: "t"}, "", "needs https://"},
		{"token and cert", contextInput{addr: "h:1", token: "t", certFile: cert, keyFile: key}, "", "give one of them"},
		{"cert without key", contextInput{addr: "h:1", certFile: cert}, "", "go together"},
		{"missing CA file", contextInput{addr: "h:1", caFile: "/nonexistent/ca.crt"}, "", "read the --ca file"},
		{"CA not PEM", contextInput{addr: "h:1", caFile: notPEM}, "", "holds no PEM certificate"},
		{"key does not match", contextInput{addr: "h:1", certFile: cert, keyFile: ca}, "", "do not form a pair"},
		{"bad scheme", contextInput{addr: "ftp://h:1"}, "", "not http(s)://host:port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newClusterContext(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || c.Addr != tc.wantAddr {
				t.Fatalf("addr = %v (%v), want %s", c, err, tc.wantAddr)
			}
		})
	}
}

// TestManagerPrecedence checks which manager a command talks to: --addr,
// then BERTH_ADDR, then the current context (with its credential), then
// the default address.
func TestManagerPrecedence(t *testing.T) {
	viaContext, ctxURL := newFakeManager(t)
	viaContext.apps["from-context"] = &types.App{Name: "from-context"}
	viaContext.adminToken = "bta_secret"
	explicit, explicitURL := newFakeManager(t)
	explicit.apps["from-explicit"] = &types.App{Name: "from-explicit"}
	tests := []struct {
		name       string
		args       []string
		envAddr    string
		useContext bool
		want       string // app listed; "" means the command fails
		wantErr    string
	}{
		{"context with its token", []string{"ls"}, "", true, "from-context", ""},
		{"--addr beats the context", []string{"ls", "--addr", explicitURL}, "", true, "from-explicit", ""},
		{"BERTH_ADDR beats the context", []string{"ls"}, explicitURL, true, "from-explicit", ""},
		{"--addr beats BERTH_ADDR", []string{"ls", "--addr", explicitURL}, ctxURL, false, "from-explicit", ""},
		{"default without a context", []string{"ls"}, "", false, "", "no berth manager answers at http://127.0.0.1:1"},
		{"explicit address carries no token", []string{"ls", "--addr", ctxURL}, "", true, "",
			"the manager at " + ctxURL + " requires a credential"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := contextHarness(t)
			h.envVars["BERTH_ADDR"] = tc.envAddr
			if code := h.run(t, "context", "create", "c", "--addr", strings.Replace(ctxURL, "http://", "https://", 1),
				"--token", "bta_secret"); code != 0 {
				t.Fatalf("create: %s", h.errOut)
			}
			// The fake speaks plain HTTP; point the context back at it.
			rewriteContextAddr(t, h, "c", ctxURL)
			if tc.useContext && h.run(t, "context", "use", "c") != 0 {
				t.Fatalf("use: %s", h.errOut)
			}
			h.out.b.Reset()
			h.errOut.b.Reset()
			code := h.run(t, tc.args...)
			if tc.want == "" {
				if code != 1 || !strings.Contains(h.errOut.String(), tc.wantErr) {
					t.Fatalf("exit %d, stderr %q; want %q", code, h.errOut, tc.wantErr)
				}
				return
			}
			if code != 0 || !strings.Contains(h.out.String(), tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want app %s", code, h.out, h.errOut, tc.want)
			}
		})
	}
}

// rewriteContextAddr edits a stored context's address, to aim a context
// made with a credential at a plain-HTTP fake.
func rewriteContextAddr(t *testing.T, h *harness, name, addr string) {
	t.Helper()
	store, err := h.e.contextStore()
	if err != nil {
		t.Fatal(err)
	}
	err = store.update(func(f *contextFile) error {
		f.Contexts[name].Addr = addr
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnauthorizedMessages(t *testing.T) {
	f, url := newFakeManager(t)
	f.adminToken = "bta_right"
	h, _ := contextHarness(t)
	if code := h.run(t, "ls", "--addr", url); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	// A loopback manager without a context: the dev cluster's own token,
	// or BERTH_TOKEN, is the way.
	want := "error: the manager at " + url + " requires a credential (no admin token or client certificate was presented): " +
		"a dev cluster started by you leaves its token where the CLI finds it (restart it: berth server stop, then berth up); " +
		"for another manager, pass BERTH_TOKEN=ADMIN_TOKEN (printed when it bootstrapped)\n"
	if h.errOut.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", h.errOut, want)
	}
	h, _ = contextHarness(t)
	h.envVars["BERTH_TOKEN"] = "BERTHADM-stale"
	if code := h.run(t, "ls", "--addr", url); code != 1 || !strings.Contains(h.errOut.String(), "refused the admin token") ||
		!strings.Contains(h.errOut.String(), "berth server stop, then berth up") {
		t.Errorf("a refused token: exit %d, stderr %q", code, h.errOut)
	}

	h, _ = contextHarness(t)
	if h.run(t, "context", "create", "old", "--addr", "https://h:1", "--token", "bta_wrong") != 0 ||
		h.run(t, "context", "use", "old") != 0 {
		t.Fatalf("setup: %s", h.errOut)
	}
	rewriteContextAddr(t, h, "old", url)
	h.errOut.b.Reset()
	if code := h.run(t, "ls"); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if got := h.errOut.String(); !strings.HasPrefix(got, "error: the manager at "+url+" refused the credential of context old") ||
		strings.Count(got, "\n") != 1 {
		t.Errorf("stderr = %q, want one line naming context old", got)
	}
	if f.gotToken != "bta_wrong" {
		t.Errorf("manager saw token %q, want the context's", f.gotToken)
	}
}

// TestContextTLS runs a command through a context against an HTTPS
// manager whose certificate the cluster CA issued: the CA verifies the
// manager by its role name, and the client certificate is presented.
func TestContextTLS(t *testing.T) {
	ca := testCA(t)
	f, _ := newFakeManager(t)
	f.apps["shop"] = &types.App{Name: "shop"}
	srv := httptest.NewUnstartedServer(requireClientCert(f.handler()))
	srv.TLS = managerTLS(t, ca)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)

	caFile := writeFile(t, "ca.crt", ca.CertPEM)
	cert, key := adminCert(t, ca)
	other := testCA(t)
	otherCert, otherKey := adminCert(t, other)
	otherCA := writeFile(t, "other-ca.crt", other.CertPEM)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"admin certificate", []string{"--ca", caFile, "--cert", cert, "--key", key}, ""},
		{"no certificate", []string{"--ca", caFile}, "requires a credential"},
		{"certificate of another cluster", []string{"--ca", caFile, "--cert", otherCert, "--key", otherKey},
			// The sentence, not the alert: TLS 1.3 may deliver a reset
			// instead when the request races the alert.
			"refused the TLS handshake of context c"},
		{"manager of another cluster", []string{"--ca", otherCA, "--cert", cert, "--key", key},
			"presents a certificate the CA of context c did not sign"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := contextHarness(t)
			args := append([]string{"context", "create", "c", "--addr", srv.URL}, tc.args...)
			if h.run(t, args...) != 0 || h.run(t, "context", "use", "c") != 0 {
				t.Fatalf("setup: %s", h.errOut)
			}
			h.out.b.Reset()
			code := h.run(t, "ls")
			if tc.wantErr == "" {
				if code != 0 || !strings.Contains(h.out.String(), "shop") {
					t.Fatalf("exit %d, stdout %q, stderr %q", code, h.out, h.errOut)
				}
				return
			}
			if code != 1 || !strings.Contains(h.errOut.String(), tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %q", code, h.errOut, tc.wantErr)
			}
		})
	}
}

// requireClientCert answers 401 to a request without a verified client
// certificate, as a manager's API off loopback does.
func requireClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: pki.ErrNoCertificate.Error()})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func testCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("test-cluster", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// managerTLS is a listener config with a manager certificate that names
// no address, only the role, and verifies client certificates if given.
func managerTLS(t *testing.T, ca *pki.CA) *tls.Config {
	t.Helper()
	keyPEM, csr, err := pki.NewKeyAndCSR("m1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignCSR(csr, "m1", pki.RoleManager, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
}

// adminCert writes an admin certificate and key issued by ca to files.
func adminCert(t *testing.T, ca *pki.CA) (certFile, keyFile string) {
	t.Helper()
	keyPEM, csr, err := pki.NewKeyAndCSR("admin", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignCSR(csr, "admin", pki.RoleAdmin, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "admin.crt", certPEM), writeFile(t, "admin.key", keyPEM)
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readContexts(t *testing.T, path string) *contextFile {
	t.Helper()
	f, err := (&contextStore{path: path}).load()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestUpWithContextStartsNothing: a current context names the manager, so
// up reports it down instead of starting a local cluster (the harness's
// spawn fails the test if called).
func TestUpWithContextStartsNothing(t *testing.T) {
	h, _ := contextHarness(t)
	addr := closedAddr(t)
	if h.run(t, "context", "create", "c", "--addr", addr) != 0 || h.run(t, "context", "use", "c") != 0 {
		t.Fatalf("setup: %s", h.errOut)
	}
	h.errOut.b.Reset()
	if code := h.run(t, "up", "-d", "--no-build"); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := "no berth manager answers at " + addr + " (context c)"
	if !strings.Contains(h.errOut.String(), want) {
		t.Errorf("stderr %q, want %q", h.errOut, want)
	}
}

// TestContextScope: server members is an API call and follows the
// context; server stop acts on a local process at --addr and does not;
// context create takes its address only from its own --addr.
func TestContextScope(t *testing.T) {
	f, url := newFakeManager(t)
	f.members = []api.Member{{ID: "m1", Name: "via-context"}}
	h, _ := contextHarness(t)
	if h.run(t, "context", "create", "c", "--addr", url) != 0 || h.run(t, "context", "use", "c") != 0 {
		t.Fatalf("setup: %s", h.errOut)
	}
	h.out.b.Reset()
	if code := h.run(t, "server", "members"); code != 0 || !strings.Contains(h.out.String(), "via-context") {
		t.Errorf("server members: exit %d, stdout %q, stderr %q", code, h.out, h.errOut)
	}
	h.errOut.b.Reset()
	if code := h.run(t, "server", "stop"); code != 1 ||
		!strings.Contains(h.errOut.String(), "no berth manager answers at http://127.0.0.1:1; nothing to stop") {
		t.Errorf("server stop: exit %d, stderr %q; want it to look at the default address only", code, h.errOut)
	}

	h.envVars["BERTH_ADDR"] = url
	h.errOut.b.Reset()
	if code := h.run(t, "context", "create", "d"); code != 1 || !strings.Contains(h.errOut.String(), "needs the manager's address") {
		t.Errorf("create without --addr under BERTH_ADDR: exit %d, stderr %q", code, h.errOut)
	}
	h.errOut.b.Reset()
	if code := h.run(t, "context", "use", "c"); code != 0 ||
		!strings.Contains(h.errOut.String(), "warning: BERTH_ADDR is set ("+url+"): commands talk to it, not to context c") {
		t.Errorf("use under BERTH_ADDR: exit %d, stderr %q; want a warning", code, h.errOut)
	}
}

// TestCredentialFor: without a context's credential, the CLI sends
// BERTH_TOKEN, else the token a local cluster of this user left for a
// loopback address; never one bound for plain HTTP beyond loopback, and a
// local token never replaces a context's.
func TestCredentialFor(t *testing.T) {
	f, url := newFakeManager(t)
	hostPort := strings.TrimPrefix(url, "http://")
	cases := []struct {
		name       string
		berthToken string
		stored     string
		args       []string
		wantCode   int
		wantToken  string
		wantErr    string
	}{
		{"stored local token", "", "BERTHADM-local", []string{"--addr", url, "ls"}, 0, "BERTHADM-local", ""},
		{"BERTH_TOKEN beats the stored one", "BERTHADM-env", "BERTHADM-local", []string{"--addr", url, "ls"}, 0, "BERTHADM-env", ""},
		{"nothing to send", "", "", []string{"--addr", url, "ls"}, 1, "", "admin token"},
		{"no token in clear beyond loopback", "BERTHADM-env", "", []string{"--addr", "http://10.0.0.5:7700", "ls"}, 1, "", "clear text"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.envVars["XDG_CONFIG_HOME"] = t.TempDir()
			h.envVars["BERTH_TOKEN"] = tc.berthToken
			if tc.stored != "" {
				if err := credfile.Save(h.e.getenv, hostPort, tc.stored); err != nil {
					t.Fatal(err)
				}
			}
			f.adminToken, f.gotToken = "BERTHADM-local", ""
			if tc.berthToken != "" {
				f.adminToken = tc.berthToken
			}
			if code := h.run(t, tc.args...); code != tc.wantCode || f.gotToken != tc.wantToken || !strings.Contains(h.errOut.String(), tc.wantErr) {
				t.Errorf("exit %d, token sent %q; want exit %d, token %q; stderr %q", code, f.gotToken, tc.wantCode, tc.wantToken, h.errOut)
			}
		})
	}
}
