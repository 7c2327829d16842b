// Package imagebuild builds a Compose service's image on the local Docker
// engine, the way `docker build` with the classic builder does, and resolves
// a tag to the image ID the CLI stores in Service.ImageID.
//
// The caller owns the engine client (see NewClient) and closes it:
//
//	cli, err := imagebuild.NewClient("")
//	...
//	defer cli.Close()
//	id, err := imagebuild.Build(ctx, cli, imagebuild.Options{
//		Context: "./web", Tag: "shop/web:latest",
//	}, os.Stderr)
//
// The context directory is sent as a tar stream that honours .dockerignore;
// the Dockerfile and .dockerignore themselves are always sent, as Docker
// does. Build output lines go to the progress writer as they arrive; a
// failed step comes back as one error naming the step's message.
package imagebuild
