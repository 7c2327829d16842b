package cli

import (
	"cmp"
	"slices"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// imageSummaries are the rows of berth images (the named services' tasks,
// every service's when none is named) for -o json|yaml.
func imageSummaries(app *types.App, tasks []*types.Task, services []string) []api.ImageSummary {
	out := []api.ImageSummary{}
	for _, t := range tasks {
		s := app.Service(t.Service)
		if s == nil || (len(services) > 0 && !slices.Contains(services, t.Service)) {
			continue
		}
		repo, tag := splitImageRef(s.Image)
		out = append(out, api.ImageSummary{ContainerName: t.Name(), Service: t.Service, Repository: repo, Tag: tag,
			Image: s.Image, PulledFrom: cmp.Or(s.ClusterImage, s.Image)})
	}
	return out
}
