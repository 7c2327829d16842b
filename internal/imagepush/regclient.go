package imagepush

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// registryClient speaks the registry's blob and manifest API to one
// repository through the API client's transport.
type registryClient struct {
	target *url.URL
	rt     http.RoundTripper
	repo   string
}

// has asks HEAD /v2/<repo>/blobs/<digest>: the blob's size, and whether
// the registry has it.
func (c registryClient) has(ctx context.Context, digest string) (int64, bool, error) {
	resp, err := c.do(ctx, http.MethodHead, c.url("/v2/"+c.repo+"/blobs/"+digest), nil, -1, "")
	if err != nil {
		return 0, false, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK && resp.ContentLength >= 0:
		return resp.ContentLength, true, nil
	case isNotFound(resp.StatusCode):
		return 0, false, nil
	}
	return 0, false, refusal(http.MethodHead, resp.Request.URL.Path, resp.StatusCode, nil)
}

// mount asks the registry to link blob digest into c.repo from repository
// from, which holds it: true once it did (201). A registry that cannot
// opens an upload session instead (202), which is cancelled: the blob is
// then sent as any other.
func (c registryClient) mount(ctx context.Context, digest, from string) (bool, error) {
	u := c.url("/v2/" + c.repo + "/blobs/uploads/")
	u.RawQuery = url.Values{"mount": {digest}, "from": {from}}.Encode()
	resp, err := c.do(ctx, http.MethodPost, u, nil, -1, "")
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, nil
	case http.StatusAccepted:
		if loc, err := c.location(resp); err == nil {
			if r, err := c.do(ctx, http.MethodDelete, loc, nil, -1, ""); err == nil {
				r.Body.Close()
			}
		}
		return false, nil
	}
	if isNotFound(resp.StatusCode) {
		return false, nil
	}
	return false, refusal(http.MethodPost, resp.Request.URL.Path, resp.StatusCode, nil)
}

// upload sends one blob of size bytes: POST an upload, one PATCH with the
// stream through a sha256, then, when check accepts the digest, PUT
// ?digest= to commit it. It returns the digest.
func (c registryClient) upload(ctx context.Context, r io.Reader, size int64, check func(string) error) (string, error) {
	resp, err := c.expect(ctx, http.MethodPost, c.url("/v2/"+c.repo+"/blobs/uploads/"), nil, -1, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	loc, err := c.location(resp)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	resp, err = c.expect(ctx, http.MethodPatch, loc, io.TeeReader(r, h), size, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if err := check(digest); err != nil {
		return "", err // the upload is left to the registry's purge
	}
	if loc, err = c.location(resp); err != nil {
		return "", err
	}
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	if _, err := c.expect(ctx, http.MethodPut, loc, nil, 0, http.StatusCreated); err != nil {
		return "", err
	}
	return digest, nil
}

// putManifest puts body under ref and returns its digest, which the
// registry must agree with.
func (c registryClient) putManifest(ctx context.Context, ref string, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	resp, err := c.do(ctx, http.MethodPut, c.url("/v2/"+c.repo+"/manifests/"+ref), bytes.NewReader(body), int64(len(body)), ociManifest)
	if err != nil {
		return "", err
	}
	if err := answer(resp, http.StatusCreated); err != nil {
		return "", err
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != digest {
		return "", fmt.Errorf("the cluster registry stored the manifest as %s, not %s; retry the push", got, digest)
	}
	return digest, nil
}

func (c registryClient) url(p string) *url.URL {
	u := *c.target
	u.Path = c.target.Path + p
	return &u
}

// location is an upload's next address; a relative one is on the target.
func (c registryClient) location(resp *http.Response) (*url.URL, error) {
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return nil, fmt.Errorf("the cluster registry answered %s %s without an upload location; retry the push",
			resp.Request.Method, resp.Request.URL.Path)
	}
	return c.target.ResolveReference(loc), nil
}

func (c registryClient) expect(ctx context.Context, method string, u *url.URL, body io.Reader, size int64, want int) (*http.Response, error) {
	resp, err := c.do(ctx, method, u, body, size, "application/octet-stream")
	if err != nil {
		return nil, err
	}
	return resp, answer(resp, want)
}

// answer closes resp, a *Refusal unless its status is want.
func answer(resp *http.Response, want int) error {
	defer resp.Body.Close()
	if resp.StatusCode == want {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return refusal(resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, b)
}

func (c registryClient) do(ctx context.Context, method string, u *url.URL, body io.Reader, size int64, ctype string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if size >= 0 {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	if ctype != "" && body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &Refusal{Method: method, Path: u.Path, Status: http.StatusBadGateway, unreachable: true,
			Message: fmt.Sprintf("cannot reach the cluster registry at %s: %v", c.target.Host, err)}
	}
	return resp, nil
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// ociManifestOf is the manifest of config and the layers in diffID order.
func ociManifestOf(config string, configSize int64, diffIDs []string, size map[string]int64) ([]byte, error) {
	m := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}{SchemaVersion: 2, MediaType: ociManifest, Config: descriptor{ociConfig, config, configSize}}
	for _, d := range diffIDs {
		m.Layers = append(m.Layers, descriptor{ociLayer, d, size[d]})
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("write the manifest: %w", err)
	}
	return b, nil
}
