// Package testimage gives tests across berth a real workload: the static Go
// program in ./app, as a FROM scratch Docker image (Ensure) or as a host
// binary for the exec driver (AppBinary).
//
// Both are built from the app's source embedded in this package and cached
// under a name derived from a hash of that source, so the first test pays
// for the build and later ones (and later runs) reuse it:
//
//	img, err := testimage.Ensure(ctx) // "berth-test/app:<hash>"
//	bin, err := testimage.AppBinary(ctx)
//
// In the image the app is the entrypoint, ImageBinary ("/app"); the image
// has no shell, so a healthcheck is ["CMD", "/app", "healthcheck"]. See
// app/main.go for the endpoints and environment the app understands; the
// network tests (test/hosts) use its /whoami (the answering host, the peer
// it saw and a PROXY v2 header's client), its UDP echo, TCP sink and echo,
// its record of a SIGTERM, and its bounded clients run with docker exec
// ("/app get URL -n N", "/app udp", "/app lookup", "/app watch", "/app
// send", "/app rr"), each printing one JSON line of counts.
// Building needs the go command on PATH and, for Ensure, a
// Docker engine; nothing is fetched from the network.
package testimage
