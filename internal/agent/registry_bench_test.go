package agent

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/testregistry"
)

// BenchmarkPull100MB measures how a 100 MB image (5 layers of random
// bytes) gets into the engine at the default socket, three ways, in one
// run:
//
//   - endpoint: `docker pull 127.0.0.1:PORT/app/big@sha256:...` through
//     the agent's pull-through endpoint, which fetches from a registry
//     behind mutual TLS standing in for a manager;
//   - direct: the same pull from that registry served over plain HTTP on
//     loopback, no endpoint between (what the endpoint costs);
//   - save+load: `docker save` of the image to a file, then, with the
//     image removed, `docker load` of it: the floor the issue names. A
//     `docker save | docker load` pipe between two engines overlaps the
//     two, so its time is between the larger of them and their sum.
//
// The image is removed before each pull and load, outside the timing. Run
// it with
//
//	go test -run '^$' -bench Pull100MB -benchtime 3x ./internal/agent/
func BenchmarkPull100MB(b *testing.B) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		b.Skipf("no docker client: %v", err)
	}
	defer cli.Close()
	ctx := context.Background()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		b.Skipf("no docker engine: %v", err)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		b.Skip("no docker CLI for save and load")
	}
	var files []testregistry.File
	for i := range 5 {
		files = append(files, testregistry.RandomFile("layer"+strconv.Itoa(i), 20<<20))
	}
	img, err := testregistry.NewImage([]string{"/layer0"}, files...)
	if err != nil {
		b.Fatal(err)
	}
	var size int
	for _, blob := range img.Blobs {
		size += len(blob)
	}
	reg := testregistry.New()
	reg.Add("app/big", img)

	f := &registryFixture{t: b, fm: newUnstartedFakeManager(b)}
	endpoint := f.serveEndpoint(f.manager(reg))
	plain := httptest.NewServer(reg)
	defer plain.Close()
	remove := func() { removeImage(cli, img.ConfigDigest) }
	defer remove()
	tar := filepath.Join(b.TempDir(), "big.tar")

	var viaEndpoint, direct, save, load time.Duration
	for b.Loop() {
		remove()
		viaEndpoint += timed(b, func() error { return pull(ctx, cli, endpoint+"/app/big@"+img.Digest) })
		remove()
		direct += timed(b, func() error { return pull(ctx, cli, plain.Listener.Addr().String()+"/app/big@"+img.Digest) })
		save += timed(b, func() error { return exec.Command("docker", "save", "-o", tar, img.ConfigDigest).Run() })
		remove()
		load += timed(b, func() error { return exec.Command("docker", "load", "-q", "-i", tar).Run() })
		_ = os.Remove(tar)
	}
	n := float64(b.N)
	b.ReportMetric(viaEndpoint.Seconds()/n, "endpoint-s")
	b.ReportMetric(direct.Seconds()/n, "direct-s")
	b.ReportMetric(save.Seconds()/n, "save-s")
	b.ReportMetric(load.Seconds()/n, "load-s")
	b.ReportMetric((save+load).Seconds()/n, "save+load-s")
	b.ReportMetric(float64(size)/1e6, "image-MB")
	b.ReportMetric(0, "ns/op")
}

func timed(b *testing.B, fn func() error) time.Duration {
	b.Helper()
	start := time.Now()
	if err := fn(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func pull(ctx context.Context, cli *client.Client, ref string) error {
	resp, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	return resp.Wait(ctx)
}
