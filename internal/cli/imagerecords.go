package cli

import (
	"context"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// imagePut and imageRecord are the API's image records, under the names
// up's shipping code and its fakes use.
type (
	imagePut    = api.ImagePut
	imageRecord = api.Image
)

// imageRecords is what up needs of the cluster's image records: the API
// client, or a fake in tests.
type imageRecords interface {
	PutImage(ctx context.Context, in imagePut) (*imageRecord, error)
	// Image is the record of "<repo>@<digest>".
	Image(ctx context.Context, ref string) (*imageRecord, error)
}

func newImageRecords(c *api.Client) imageRecords { return c }

// imageRepo is the cluster registry's repository of a service.
func imageRepo(app, service string) (string, error) { return types.ImageRepo(app, service) }
