package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/credfile"
	"github.com/berth-dev/berth/internal/pki"
)

// contextInput is what `berth context create` was given.
type contextInput struct {
	addr, caFile, token, certFile, keyFile string
}

// newClusterContext checks the input and reads the files it names into a
// context. It refuses what could never work, or would leak: a credential
// sent over plain HTTP, a certificate without its key.
func newClusterContext(in contextInput) (*clusterContext, error) {
	if in.token != "" && (in.certFile != "" || in.keyFile != "") {
		return nil, errors.New("--token and --cert/--key are two ways to authenticate; give one of them")
	}
	if (in.certFile == "") != (in.keyFile == "") {
		return nil, errors.New("--cert and --key go together: give both the client certificate and its key")
	}
	secure := in.caFile != "" || in.token != "" || in.certFile != ""
	addr, err := contextAddr(in.addr, secure)
	if err != nil {
		return nil, err
	}
	c := &clusterContext{Addr: addr, Token: in.token}
	// A token may go to a loopback manager over plain HTTP (it never
	// leaves the machine); a CA or certificate means TLS.
	if strings.HasPrefix(addr, "http://") && (in.caFile != "" || in.certFile != "" || checkPlainToken(addr) != nil) && secure {
		return nil, fmt.Errorf("%s is plain HTTP: a CA or certificate, or a token beyond loopback, needs https://", addr)
	}
	if c.CAPEM, err = readPEMFile(in.caFile, "--ca"); err != nil {
		return nil, err
	}
	if c.CertPEM, err = readPEMFile(in.certFile, "--cert"); err != nil {
		return nil, err
	}
	if c.KeyPEM, err = readPEMFile(in.keyFile, "--key"); err != nil {
		return nil, err
	}
	// Build the client once now, so a bad file fails here and not on
	// every later command.
	if _, err := c.clientOptions(); err != nil {
		return nil, err
	}
	return c, nil
}

// contextAddr normalises a manager address to a URL. Without a scheme it
// is https when the context carries a CA or credential, else http.
func contextAddr(addr string, secure bool) (string, error) {
	if addr == "" {
		return "", errors.New("a context needs the manager's address: --addr https://HOST:7700")
	}
	if !strings.Contains(addr, "://") {
		scheme := "http://"
		if secure {
			scheme = "https://"
		}
		addr = scheme + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("manager address %q is not http(s)://host:port", addr)
	}
	return strings.TrimRight(addr, "/"), nil
}

func readPEMFile(path, flag string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the %s file: %w", flag, err)
	}
	return string(b), nil
}

// clientOptions turns the context into API client options: TLS that trusts
// the context's CA (and presents its client certificate), and the token.
func (c *clusterContext) clientOptions() ([]api.ClientOption, error) {
	var opts []api.ClientOption
	if c.CAPEM != "" || c.CertPEM != "" {
		cfg, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, api.WithTLS(cfg))
	}
	if c.Token != "" {
		opts = append(opts, api.WithToken(c.Token))
	}
	if len(c.Fallbacks) > 0 {
		opts = append(opts, api.WithFallbacks(c.Fallbacks))
	}
	return opts, nil
}

func (c *clusterContext) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.CAPEM)) {
			return nil, errors.New("the CA file holds no PEM certificate; pass the cluster's ca.crt (a manager keeps it in DATA_DIR/pki)")
		}
		cfg.RootCAs = pool
		// A manager's certificate always carries its role's name, while
		// the addresses in it are only those it asked for: verify the
		// name, so any address of the manager works.
		cfg.ServerName = pki.RoleManager.ServerName()
	}
	if c.CertPEM != "" {
		pair, err := tls.X509KeyPair([]byte(c.CertPEM), []byte(c.KeyPEM))
		if err != nil {
			return nil, fmt.Errorf("the client certificate and key do not form a pair: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// addCredential adds the credential for the chosen manager when no context
// gave one: BERTH_TOKEN if set (it also overrides a context's token), else
// the token a dev cluster of this user left for that address on loopback
// (credfile). It refuses to send a token in plain text beyond loopback.
func (g *globalOptions) addCredential(e *env) error {
	if tok := strings.TrimSpace(e.getenv("BERTH_TOKEN")); tok != "" {
		if err := checkPlainToken(g.addr); err != nil {
			return fmt.Errorf("BERTH_TOKEN: %w", err)
		}
		g.clientOpts = append(g.clientOpts, api.WithToken(tok))
		g.credential = "token"
		return nil
	}
	if g.contextName != "" {
		return nil
	}
	tok, err := e.localCredential(g.addr)
	if err != nil || tok == "" {
		return err
	}
	g.clientOpts = append(g.clientOpts, api.WithToken(tok))
	g.credential = "token"
	return nil
}

// localCredential is the token a dev cluster left for addr, when addr is a
// plain-HTTP loopback address ("" otherwise, or when there is none).
func (e *env) localCredential(addr string) (string, error) {
	hostPort, err := listenAddr(addr)
	if err != nil || strings.HasPrefix(addr, "https://") || !api.IsLoopback(hostPort) {
		return "", nil
	}
	tok, err := credfile.Load(e.getenv, hostPort)
	if tok != "" || err != nil {
		return tok, err
	}
	// A server told to listen on localhost reports (and so files) the
	// address it bound, 127.0.0.1.
	if host, port, _ := net.SplitHostPort(hostPort); host == "localhost" {
		return credfile.Load(e.getenv, net.JoinHostPort("127.0.0.1", port))
	}
	return "", nil
}

// checkPlainToken refuses a token bound for plain HTTP beyond loopback,
// where anyone on the path could read it.
func checkPlainToken(addr string) error {
	if !strings.HasPrefix(addr, "http://") && strings.Contains(addr, "://") {
		return nil
	}
	hostPort, err := listenAddr(addr)
	if err != nil {
		return err
	}
	if !api.IsLoopback(hostPort) {
		return fmt.Errorf("%s is plain HTTP beyond loopback, where a token would travel in clear text; use https://", addr)
	}
	return nil
}
