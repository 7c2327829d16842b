// Package imagepush ships an image from the user's Docker engine to the
// cluster's registry with the engine's own push, so layers the registry
// already holds are skipped and the engine's layer cache is used.
//
// The engine talks plain HTTP only to loopback registries, and the cluster's
// registry is behind TLS and the admin credential. So the caller starts a
// Proxy on 127.0.0.1:<random> that forwards /v2/... to the registry through
// the http.RoundTripper it is given (the API client's, which adds the
// credential and trusts the cluster CA), then pushes through it:
//
//	p, err := imagepush.Start(ctx, "https://manager:7700", rt) // checks /v2/ first
//	if err != nil { ... }                                      // ErrNoRegistry: an older manager
//	defer p.Close()
//	res, err := p.Push(ctx, engine, "myapp:dev", "myapp/web", progress)
//	// res.Manifest is "sha256:..." in repository myapp/web; res.Config the image ID
//
// Push tags the image 127.0.0.1:<port>/<repo>:berth-push, pushes it,
// writes one line per layer state change to progress, and removes the tag
// (and the digest reference the push leaves) again, so the user's image
// list is as it was. The engine must run on this machine: a remote
// DOCKER_HOST cannot reach the proxy.
package imagepush
