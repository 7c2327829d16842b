package hosts

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/pki"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// gcGrace is the managers' --registry-gc-grace in TestImagesOnHosts: long
// enough that no step of an up outlasts it on a busy machine (a blob pushed
// and not yet recorded, an app's images waiting for replicas, are spared
// only that long), short enough to watch GC.
const gcGrace = 30 * time.Second

// imagesRun is the app TestImagesOnHosts runs on its cluster.
type imagesRun struct {
	c              cli
	ac             *api.Client
	dir, file, app string
	agents         map[string]string
	home, cluster  string
	managers       []hostRecord
	adminToken, ca string
}

// rebuildWeb changes web's build to msg, runs up --build and waits until
// web runs an image other than was on the three agents; it returns that
// image's ref.
func (r imagesRun) rebuildWeb(t *testing.T, msg, was string) string {
	t.Helper()
	writeBuild(t, filepath.Join(r.dir, "web"), msg)
	res := r.c.must(t, "up", "-p", r.app, "-f", r.file, "--build")
	t.Logf("up --build after web changed to %q:\n%s", msg, res.Stderr)
	now := ""
	h.WaitFor(t, 2*time.Minute, "web's new image on three agents", func() error {
		a, err := r.ac.GetApp(context.Background(), r.app)
		if err != nil {
			return err
		}
		for _, s := range a.Services {
			if s.Name == "web" && s.ClusterImage == was {
				return fmt.Errorf("web still runs %s", was)
			} else if s.Name == "web" {
				now = s.ClusterImage
			}
		}
		return serviceSpread(r.ac, r.app, "web", r.agents, 3)()
	})
	return now
}

// checkImageGC: two more rebuilds of web leave its first image (web1)
// needed by no version (the leader keeps the current one and two previous
// per service); within a few graces its own blobs and manifest are gone
// from every manager's registry directory, while the kept images' blobs
// stay there and every manager still serves them.
func (r imagesRun) checkImageGC(t *testing.T, web1, web2 string) {
	recs := imageRecords(t, r.ac)
	if recs[web1] == nil || recs[web2] == nil {
		t.Fatalf("%d records, want %s and %s among them", len(recs), web1, web2)
	}
	unique := uniqueBlobs(recs, web1)
	if len(unique) < 2 { // its manifest, its config, its COPY layer
		t.Fatalf("web1 %s has %d blobs no other image has (%v), want its manifest, config and layer", web1, len(unique), unique)
	}
	regs := map[string]string{}
	for _, m := range r.managers {
		regs[m.Name] = filepath.Join(r.home, "state", "berth", "hosts", r.cluster, m.Name, "berth", "registry")
	}
	// First every manager has them (replication is asynchronous), so
	// their going below is GC, not a copy that never came.
	h.WaitFor(t, time.Minute, "web1's blobs on every manager", func() error {
		return blobsOnDisk(regs, unique, true)
	})
	web3 := r.rebuildWeb(t, "web 3", web2)
	web4 := r.rebuildWeb(t, "web 4", web3)
	start := time.Now()
	h.WaitFor(t, time.Minute+4*gcGrace, "web1's blobs gone from every manager", func() error {
		return blobsOnDisk(regs, unique, false)
	})
	t.Logf("GC: web1's %d own blobs left all three managers' registries %.1fs after web 4 was up (grace %s)", len(unique), time.Since(start).Seconds(), gcGrace)

	after := imageRecords(t, r.ac)
	if after[web1] != nil {
		t.Errorf("web1's record %s outlived its blobs", web1)
	}
	for _, ref := range []string{web2, web3, web4} {
		if after[ref] == nil {
			t.Errorf("web's image %s is gone; the current and two previous are kept", ref)
		}
	}
	// The kept: every record left, and those of before but web1 (so a
	// record GC wrongly took still has its blobs looked for).
	kept := maps.Clone(after)
	for ref, im := range recs {
		if ref != web1 && kept[ref] == nil {
			kept[ref] = im
		}
	}
	for ref, im := range kept {
		if err := blobsOnDisk(regs, append([]string{im.Digest}, blobDigests(im)...), true); err != nil {
			t.Errorf("kept image %s: %v", ref, err)
		}
	}
	r.pullEverywhere(t, kept)
	t.Logf("kept: %v", slices.Sorted(maps.Keys(kept)))
}

// pullEverywhere fetches every manifest and blob of the images from each
// manager's registry (the API port, with the admin token) and checks its
// digest.
func (r imagesRun) pullEverywhere(t *testing.T, recs map[string]*api.Image) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(r.ca))
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: pki.RoleManager.ServerName()}}}
	for _, m := range r.managers {
		base := "https://" + net.JoinHostPort(m.Address, strconv.Itoa(machine.APIPort)) + "/v2/"
		seen := map[string]bool{}
		for _, im := range recs {
			urls := map[string]string{im.Digest: base + im.Repo + "/manifests/" + im.Digest}
			for _, b := range im.Blobs {
				urls[b.Digest] = base + im.Repo + "/blobs/" + b.Digest
			}
			for d, u := range urls {
				if seen[d] {
					continue
				}
				seen[d] = true
				if err := pullDigest(hc, u, r.adminToken, d); err != nil {
					t.Errorf("%s: %v", m.Name, err)
				}
			}
		}
	}
}

func pullDigest(hc *http.Client, u, token, digest string) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, resp.Body); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if got := "sha256:" + hex.EncodeToString(sum.Sum(nil)); got != digest {
		return fmt.Errorf("GET %s: got bytes of %s", u, got)
	}
	return nil
}

// imageRecords are the cluster's image records by ref.
func imageRecords(t *testing.T, ac *api.Client) map[string]*api.Image {
	t.Helper()
	ims, err := ac.Images(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*api.Image{}
	for i := range ims {
		out[ims[i].Ref] = &ims[i]
	}
	return out
}

// uniqueBlobs are the digests of ref's manifest and blobs that no other
// record names.
func uniqueBlobs(recs map[string]*api.Image, ref string) []string {
	others := map[string]bool{}
	for r, im := range recs {
		if r == ref {
			continue
		}
		others[im.Digest] = true
		for _, b := range im.Blobs {
			others[b.Digest] = true
		}
	}
	var out []string
	for _, d := range append([]string{recs[ref].Digest}, blobDigests(recs[ref])...) {
		if !others[d] && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

func blobDigests(im *api.Image) []string {
	var out []string
	for _, b := range im.Blobs {
		out = append(out, b.Digest)
	}
	return out
}

// blobsOnDisk says whether each manager's registry directory holds (want
// true) or lacks (false) every digest's data file.
func blobsOnDisk(regs map[string]string, digests []string, want bool) error {
	for name, dir := range regs {
		have, err := diskBlobs(dir)
		if err != nil {
			return err
		}
		for _, d := range digests {
			if have[d] != want {
				return fmt.Errorf("%s's registry: blob %s there %v, want %v", name, d, have[d], want)
			}
		}
	}
	return nil
}

// diskBlobs are the digests whose data a registry directory holds: a blob
// is stored as .../blobs/sha256/<2>/<hex>/data.
func diskBlobs(dir string) (map[string]bool, error) {
	have := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // swept during the walk
		} else if err != nil {
			return err
		}
		if d.Name() == "data" && d.Type().IsRegular() && strings.Contains(p, string(filepath.Separator)+"blobs"+string(filepath.Separator)) {
			have["sha256:"+filepath.Base(filepath.Dir(p))] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the registry directory %s: %w", dir, err)
	}
	return have, nil
}
