package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/berth-dev/berth/api"
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
	if strings.HasPrefix(addr, "http://") && secure {
		return nil, fmt.Errorf("%s is plain HTTP: a CA, token or certificate needs https://", addr)
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
