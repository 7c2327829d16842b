package api

import "net/http"

// RoundTripper is the client's transport with its credential added to
// every request: for a caller that speaks another protocol to the same
// manager through the client's TLS settings and token (the CLI pushing
// images to the registry at /v2/). It neither retries nor fails over.
func (c *Client) RoundTripper() http.RoundTripper {
	base := c.http.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return authorized{c: c, base: base}
}

type authorized struct {
	c    *Client
	base http.RoundTripper
}

func (a authorized) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not change its request
	a.c.authorize(r)
	return a.base.RoundTrip(r)
}
