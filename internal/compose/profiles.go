package compose

import (
	"context"
	"maps"
	"slices"
)

// DisabledServices names the services of the files that the active
// profiles leave out (compose-go's DisabledServices). As with docker
// compose, up leaves such a service as it runs, and it is no orphan.
func DisabledServices(ctx context.Context, o Options) ([]string, error) {
	project, _, err := loadProject(ctx, o)
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(project.DisabledServices)), nil
}
