package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
)

// This file bridges to the image records of api/images.go, which the
// regsrv branch writes at the same time as this one. At the merge:
// imagePut and imageRecord become aliases of api.ImagePut and api.Image,
// *api.Client is the imageRecords (newImageRecords returns it), and
// imageRepo is types.ImageRepo. The wire format here is that file's.

// imagePut records an image pushed to the registry of the manager the
// client talks to (api.ImagePut).
type imagePut struct {
	App     string `json:"app"`
	Service string `json:"service"`
	Repo    string `json:"repo"`
	Digest  string `json:"digest"`
}

// imageRecord is what up reads of an image record (api.Image).
type imageRecord struct {
	Ref      string   `json:"ref"`
	Digest   string   `json:"digest"`
	Config   string   `json:"config"`
	Replicas []string `json:"replicas"`
}

// imageRecords is what up needs of the cluster's image records.
type imageRecords interface {
	PutImage(ctx context.Context, in imagePut) (*imageRecord, error)
	// Image is the record of "<repo>@<digest>".
	Image(ctx context.Context, ref string) (*imageRecord, error)
}

func newImageRecords(c *api.Client) imageRecords { return recordsBridge{c: c} }

// recordsBridge speaks the image routes through the client's transport.
type recordsBridge struct{ c *api.Client }

const imageCallTimeout = 2 * time.Minute

func (b recordsBridge) PutImage(ctx context.Context, in imagePut) (*imageRecord, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	return b.call(ctx, http.MethodPut, "/v1/images", bytes.NewReader(body))
}

func (b recordsBridge) Image(ctx context.Context, ref string) (*imageRecord, error) {
	repo, dgst, _ := strings.Cut(ref, "@")
	return b.call(ctx, http.MethodGet, "/v1/images/"+url.PathEscape(dgst)+"?repo="+url.QueryEscape(repo), nil)
}

func (b recordsBridge) call(ctx context.Context, method, path string, body io.Reader) (*imageRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, imageCallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.c.Addr()+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.c.RoundTripper().RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		var eb api.ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(raw))
		}
		return nil, &api.Error{Status: resp.StatusCode, Message: eb.Error, Field: eb.Field}
	}
	var rec imageRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("read the manager's image record: %w", err)
	}
	return &rec, nil
}

// repoPart is one component of a registry repository name, as the
// distribution spec allows it.
var repoPart = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// imageRepo is the cluster registry's repository of a service (as
// types.ImageRepo on the regsrv branch).
func imageRepo(app, service string) (string, error) {
	for _, p := range []struct{ field, v string }{{"app", app}, {"service", service}} {
		if !repoPart.MatchString(p.v) {
			return "", fmt.Errorf("%s %q cannot name a registry repository: use lowercase letters, digits and '.', '_', '-' between them", p.field, p.v)
		}
	}
	return app + "/" + service, nil
}
