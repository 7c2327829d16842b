package imagebuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// Options is one image build, as a Compose build section gives it.
type Options struct {
	Context    string // directory
	Dockerfile string // relative to Context, or absolute; default "Dockerfile"
	Args       map[string]string
	Target     string
	Tag        string
	Labels     map[string]string
	NoCache    bool // build every step again (docker build --no-cache)
	Pull       bool // pull a newer base image first (docker build --pull)
}

// Build builds an image on the engine cli talks to and returns its ID. The
// builder's output lines go to progress (nil: discarded).
func Build(ctx context.Context, cli *client.Client, o Options, progress io.Writer) (string, error) {
	if progress == nil {
		progress = io.Discard
	}
	bc, err := newBuildContext(o.Context, o.Dockerfile)
	if err != nil {
		return "", err
	}
	pr, pw := io.Pipe()
	tarDone := make(chan error, 1)
	go func() {
		err := bc.writeTar(pw)
		pw.CloseWithError(err)
		tarDone <- err
	}()
	// Closing the reader unblocks the tar writer if the engine stops reading.
	defer func() { pr.Close(); <-tarDone }()

	res, err := cli.ImageBuild(ctx, pr, buildOptions(o, bc.dfName))
	if err != nil {
		return "", fmt.Errorf("build %s: %w", describe(o), err)
	}
	defer res.Body.Close()
	id, err := readBuildStream(res.Body, progress)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", describe(o), err)
	}
	if id == "" && o.Tag != "" {
		// Older engines print the ID only as "Successfully built <id>".
		return ImageID(ctx, cli, o.Tag)
	}
	if id == "" {
		return "", fmt.Errorf("build %s: the engine did not report an image ID", describe(o))
	}
	return id, nil
}

func buildOptions(o Options, dockerfile string) client.ImageBuildOptions {
	args := make(map[string]*string, len(o.Args))
	for k, v := range o.Args {
		args[k] = &v
	}
	bo := client.ImageBuildOptions{
		Dockerfile:  dockerfile,
		BuildArgs:   args,
		Target:      o.Target,
		Labels:      o.Labels,
		Remove:      true,
		ForceRemove: true,
		NoCache:     o.NoCache,
		PullParent:  o.Pull,
	}
	if o.Tag != "" {
		bo.Tags = []string{o.Tag}
	}
	return bo
}

func describe(o Options) string {
	if o.Tag != "" {
		return "image " + o.Tag
	}
	return "context " + o.Context
}

// readBuildStream copies the builder's output to progress and returns the
// image ID from the stream's aux message, or the builder's error.
func readBuildStream(r io.Reader, progress io.Writer) (string, error) {
	dec := json.NewDecoder(r)
	var id, step string
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return id, nil
		} else if err != nil {
			return "", fmt.Errorf("read build output: %w", err)
		}
		if m.Error != nil {
			return "", stepError(step, m.Error.Message)
		}
		if m.Stream != "" {
			if strings.HasPrefix(m.Stream, "Step ") {
				step = strings.TrimSpace(m.Stream)
			}
			_, _ = io.WriteString(progress, m.Stream)
		} else if m.Status != "" {
			_, _ = fmt.Fprintln(progress, m.Status)
		}
		if m.Aux != nil {
			var aux struct{ ID string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
	}
}

// stepError names the step that failed ("Step 2/3 : RUN make") beside the
// builder's message, so the user sees which line of the Dockerfile to fix.
func stepError(step, msg string) error {
	msg = strings.TrimSpace(msg)
	if step == "" {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", step, msg)
}
