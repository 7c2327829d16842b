package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"

	"github.com/berth-dev/berth/internal/imagebuild"
	"github.com/berth-dev/berth/internal/imagepush"
	"github.com/moby/moby/client"
)

// imageBuilder builds service images on the local engine. The build runs
// where the CLI runs, as with docker compose; the manager never sees a build
// context.
type imageBuilder interface {
	// ImageID returns the ID of the local image ref, or "" with a nil
	// error when the engine does not hold it.
	ImageID(ctx context.Context, ref string) (string, error)
	// RegistryHas reports whether ref's registry has the image; an error
	// means the registry could not be asked, so nobody knows.
	RegistryHas(ctx context.Context, ref string) (bool, error)
	// LocalOnly reports whether the engine holds ref and no registry
	// copy of it (no RepoDigest in ref's repository: built here, loaded
	// from a file, or another image tagged so), so only a push gets it to
	// the nodes.
	LocalOnly(ctx context.Context, ref string) (bool, error)
	// Remove removes ref from the engine (down --rmi); false when the
	// engine has no such image.
	Remove(ctx context.Context, ref string) (bool, error)
	// Build builds an image and returns its ID.
	Build(ctx context.Context, o imagebuild.Options, progress io.Writer) (string, error)
	// Pull has the engine pull ref from its registry, writing one line per
	// layer state change to progress.
	Pull(ctx context.Context, ref string, progress io.Writer) error
	// OpenRegistry readies pushes to the cluster registry at target (a
	// manager's API base URL) through rt, the API client's transport.
	OpenRegistry(ctx context.Context, target string, rt http.RoundTripper) (registryPusher, error)
	Close() error
}

// registryPusher pushes local images to the cluster registry, one at a
// time.
type registryPusher interface {
	// Push pushes localRef to repo, writing one line per layer state
	// change to progress.
	Push(ctx context.Context, localRef, repo string, progress io.Writer) (imagepush.Result, error)
	Close() error
}

// dockerImages is the imageBuilder of the local Docker engine. It connects
// on first use, so commands that build nothing never need an engine.
type dockerImages struct {
	cli *client.Client
}

func (d *dockerImages) engine() (*client.Client, error) {
	if d.cli != nil {
		return d.cli, nil
	}
	cli, err := imagebuild.NewClient("")
	if err != nil {
		return nil, &errEngine{host: engineHost(nil), err: err}
	}
	d.cli = cli
	return cli, nil
}

// errEngine is a Docker engine the CLI needs and cannot use.
type errEngine struct {
	host string
	err  error
}

func (e *errEngine) Error() string {
	return fmt.Sprintf("cannot reach the Docker engine at %s, which berth builds and pushes images with: "+
		"start Docker, or point DOCKER_HOST at a running engine", e.host)
}

func (e *errEngine) Unwrap() error { return e.err }

// engineError names the engine when err says it could not be reached.
func engineError(cli *client.Client, err error) error {
	if client.IsErrConnectionFailed(err) || errors.Is(err, imagepush.ErrEngine) {
		return &errEngine{host: engineHost(cli), err: err}
	}
	return err
}

func engineHost(cli *client.Client) string {
	if cli != nil {
		return cli.DaemonHost()
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return client.DefaultDockerHost
}

func (d *dockerImages) ImageID(ctx context.Context, ref string) (string, error) {
	cli, err := d.engine()
	if err != nil {
		return "", err
	}
	id, err := imagebuild.ImageID(ctx, cli, ref)
	if errors.Is(err, imagebuild.ErrImageNotFound) {
		return "", nil
	}
	return id, engineError(cli, err)
}

func (d *dockerImages) LocalOnly(ctx context.Context, ref string) (bool, error) {
	cli, err := d.engine()
	if err != nil {
		return false, err
	}
	img, err := cli.ImageInspect(ctx, ref)
	switch {
	case cerrdefs.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, engineError(cli, fmt.Errorf("inspect image %s: %w", ref, err))
	}
	return !pulledAs(ref, img.RepoDigests), nil
}

// pulledAs reports whether one of an image's RepoDigests is in ref's
// repository: the engine pulled it under that name (or pushed it there),
// so the nodes can pull ref as well. A digest of another repository (an
// image pulled as nginx and tagged myapp:dev) does not make myapp:dev
// pullable.
func pulledAs(ref string, repoDigests []string) bool {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return false
	}
	for _, d := range repoDigests {
		if n, err := reference.ParseNormalizedNamed(d); err == nil && n.Name() == named.Name() {
			return true
		}
	}
	return false
}

// RegistryHas asks the engine to ask the registry. A registry that answers
// "not found", or refuses access as Docker Hub does for a repository that
// does not exist, means no.
func (d *dockerImages) RegistryHas(ctx context.Context, ref string) (bool, error) {
	cli, err := d.engine()
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, registryAskTimeout)
	defer cancel()
	_, err = cli.DistributionInspect(ctx, ref, client.DistributionInspectOptions{})
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err), cerrdefs.IsUnauthorized(err), cerrdefs.IsPermissionDenied(err):
		return false, nil
	}
	return false, fmt.Errorf("ask the registry of %s: %w", ref, err)
}

// registryAskTimeout bounds one registry question: up must not hang on a
// registry it cannot reach, it only loses the early check.
const registryAskTimeout = 10 * time.Second

func (d *dockerImages) Build(ctx context.Context, o imagebuild.Options, progress io.Writer) (string, error) {
	cli, err := d.engine()
	if err != nil {
		return "", err
	}
	id, err := imagebuild.Build(ctx, cli, o, progress)
	return id, engineError(cli, err)
}

func (d *dockerImages) Pull(ctx context.Context, ref string, progress io.Writer) error {
	cli, err := d.engine()
	if err != nil {
		return err
	}
	resp, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return engineError(cli, fmt.Errorf("pull %s: %w", ref, err))
	}
	defer resp.Close()
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return engineError(cli, fmt.Errorf("pull %s: %w", ref, err))
		}
		if msg.Error != nil {
			return fmt.Errorf("pull %s: %s", ref, msg.Error.Message)
		}
		if msg.ID != "" && msg.Status != "" && msg.Progress == nil {
			fmt.Fprintf(progress, "%s %s\n", msg.ID, msg.Status)
		}
	}
	return nil
}

func (d *dockerImages) OpenRegistry(ctx context.Context, target string, rt http.RoundTripper) (registryPusher, error) {
	cli, err := d.engine()
	if err != nil {
		return nil, err
	}
	if !engineOnThisMachine(cli.DaemonHost()) {
		return nil, fmt.Errorf("the Docker engine at %s is not on this machine, so it cannot reach berth's push "+
			"endpoint on this machine's loopback: run berth up where DOCKER_HOST is a local engine", cli.DaemonHost())
	}
	p, err := imagepush.Start(ctx, target, rt)
	if err != nil {
		return nil, err
	}
	return &enginePusher{proxy: p, cli: cli}, nil
}

// engineOnThisMachine: the engine shares this machine's loopback (a
// socket, or a TCP address on loopback).
func engineOnThisMachine(host string) bool {
	u, err := client.ParseHostURL(host)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "unix", "npipe":
		return true
	case "tcp", "http", "https":
		h := u.Hostname()
		ip := net.ParseIP(h)
		return h == "localhost" || (ip != nil && ip.IsLoopback())
	}
	return false // ssh://: another machine's engine
}

// enginePusher pushes the engine's save with uncompressed layers straight
// to the registry (the engine's own push gzips every layer, slower than
// the network it saves), and with the engine's push through the proxy
// where the engine's save is not in a layout berth reads.
type enginePusher struct {
	proxy *imagepush.Proxy
	cli   *client.Client
}

func (p *enginePusher) Push(ctx context.Context, localRef, repo string, progress io.Writer) (imagepush.Result, error) {
	res, err := p.proxy.RawPush(ctx, p.cli, localRef, repo, progress)
	if errors.Is(err, imagepush.ErrLayout) {
		res, err = p.proxy.Push(ctx, p.cli, localRef, repo, progress)
	}
	return res, engineError(p.cli, err)
}

func (p *enginePusher) Close() error { return p.proxy.Close() }

func (d *dockerImages) Close() error {
	if d.cli == nil {
		return nil
	}
	return d.cli.Close()
}
