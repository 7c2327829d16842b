// Package cluster tests berth as a multi-host cluster: three managers and
// several agents as real processes on their own loopback addresses, joined
// with tokens over mutual TLS, running exec-driver services, while the tests
// kill, freeze and restart them. See harness for how the processes run.
package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testimage"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// binaries are the programs under test, built once by TestMain.
type binaries struct {
	berth string // the berth binary
	app   string // the test app, run by exec services
}

// bins is set once by TestMain before any test runs and only read after.
var bins binaries

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	root, err := harness.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "berth-cluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins.berth = filepath.Join(dir, "berth")
	if err := harness.BuildBerth(ctx, root, bins.berth); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	if bins.app, err = testimage.AppBinary(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cluster: build the test app:", err)
		return 1
	}
	return m.Run()
}

// start forms a cluster of three managers and the given agents.
func start(t *testing.T, opts harness.Options) *harness.Cluster {
	t.Helper()
	return harness.Start(t, bins.berth, bins.app, opts)
}
