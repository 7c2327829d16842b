package harness

import (
	"context"

	e2e "github.com/berth-dev/berth/test/e2e/harness"
)

// RepoRoot is the root of this checkout.
func RepoRoot() (string, error) { return e2e.RepoRoot() }

// BuildBerth builds the berth binary of the checkout at root into out.
func BuildBerth(ctx context.Context, root, out string) error { return e2e.BuildBerth(ctx, root, out) }

// copyFile copies src to dst with mode.
var copyFile = e2e.CopyFile
