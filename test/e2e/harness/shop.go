package harness

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// ShopPage is one answer of examples/shop's front page through lb.
type ShopPage struct {
	Status int
	Body   string
	Web    string // the web replica that answered (its hostname)
}

// shopParts are the line prefixes a page that every part answered holds,
// one per part web calls: the example's own proof that each worked.
var shopParts = []string{
	"berth shop: every part answered\n",
	"\nweb: replica ",
	"\nauth: ok, auth ",
	"\nsearch: \"tea\" found 2 products (Green tea, Black tea) on search ",
	"\nredis: page viewed ",
	"\ndb: visit ",
	"\nlog: line ",
}

// Check is nil when the page shows that web reached auth, search, redis,
// MariaDB and the log service.
func (p ShopPage) Check() error {
	if p.Status != http.StatusOK {
		return fmt.Errorf("status %d, want 200:\n%s", p.Status, p.Body)
	}
	for _, want := range shopParts {
		if !strings.Contains(p.Body, want) {
			return fmt.Errorf("the page lacks %q:\n%s", strings.TrimSpace(want), p.Body)
		}
	}
	return nil
}

// GetShop GETs https://addr/ once. lb's certificate is self-signed, made
// when lb started: it is checked as its own root, for the name localhost.
func GetShop(addr string) (ShopPage, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{
			// The chain is verified below against the certificate itself,
			// as no CA signed it.
			InsecureSkipVerify: true,
			VerifyConnection:   verifySelfSigned,
		},
		DisableKeepAlives: true, // each GET a new connection, so lb may pick another replica
	}}
	resp, err := client.Get("https://" + addr + "/")
	if err != nil {
		return ShopPage{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return ShopPage{}, err
	}
	p := ShopPage{Status: resp.StatusCode, Body: string(b)}
	if _, rest, ok := strings.Cut(p.Body, "\nweb: replica "); ok {
		p.Web, _, _ = strings.Cut(rest, "\n")
	}
	return p, nil
}

func verifySelfSigned(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("lb sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost"})
	return err
}

// WaitShop GETs https://addr/ until the page passes Check or timeout
// passes, and returns that page.
func WaitShop(tb testing.TB, addr string, timeout time.Duration) ShopPage {
	tb.Helper()
	var page ShopPage
	WaitFor(tb, timeout, "the shop's page at https://"+addr+"/", func() error {
		p, err := GetShop(addr)
		if err != nil {
			return err
		}
		if err := p.Check(); err != nil {
			return err
		}
		page = p
		return nil
	})
	return page
}

// ShopServed is a condition for WaitFor or Poll: met when a GET of
// https://addr/ passes Check and, counting this one, complete pages came
// from want distinct web replicas, which it records in seen.
func ShopServed(addr string, seen map[string]bool, want int) func() error {
	return func() error {
		p, err := GetShop(addr)
		if err != nil {
			return err
		}
		if err := p.Check(); err != nil {
			return err
		}
		seen[p.Web] = true
		if len(seen) < want {
			return fmt.Errorf("%d of %d web replicas seen so far: %v", len(seen), want, seen)
		}
		return nil
	}
}
