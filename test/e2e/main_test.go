// Package e2e tests berth as a user runs it: the berth binary, a real dev
// server process, the CLI, and (for most tests) the local Docker engine.
// Without an engine the Docker tests skip, except in CI where they fail.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/e2e/harness"
)

// berthBin is the berth binary under test, built once by TestMain, and
// repoRoot the repository's top directory (examples/ lives there).
var berthBin, repoRoot string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	root, err := harness.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "berth-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	repoRoot, berthBin = root, filepath.Join(dir, "berth")
	if err := harness.BuildBerth(ctx, root, berthBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}
