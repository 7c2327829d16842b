package imagepush

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"
)

// pushStream is the part of the engine's push answer follow reads.
type pushStream interface {
	JSONMessages(ctx context.Context) iter.Seq2[jsonstream.Message, error]
}

// follow reads the engine's push stream to its end: layer states go to
// layers, the manifest digest (from the aux message) into res.
func follow(ctx context.Context, resp pushStream, layers *layerLog, res *Result) error {
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return fmt.Errorf("read the engine's push progress: %w", err)
		}
		if msg.Error != nil {
			return fmt.Errorf("the Docker engine's push failed: %w", errors.New(msg.Error.Message))
		}
		if msg.Aux != nil {
			var aux struct{ Digest string }
			if json.Unmarshal(*msg.Aux, &aux) == nil && aux.Digest != "" {
				res.Manifest = aux.Digest
			}
			continue
		}
		layers.update(msg)
	}
	if res.Manifest == "" {
		return errors.New("the Docker engine's push ended without the manifest's digest; retry, and report it if it persists")
	}
	return nil
}

// Layer states as berth shows them.
const (
	layerPushing  = "pushing"
	layerPushed   = "pushed"
	layerSkipped  = "skipped (the cluster registry has it)"
	layerMounted  = "mounted from another repository of the cluster registry"
	layerRetrying = "retrying"
)

// layerLog writes one line per layer state change. The engine repeats
// "Pushing" with every chunk and says "Preparing" and "Waiting" for every
// layer first; those are not news.
type layerLog struct {
	w     io.Writer
	state map[string]string
}

func newLayerLog(w io.Writer) *layerLog {
	return &layerLog{w: w, state: map[string]string{}}
}

func (l *layerLog) update(msg jsonstream.Message) {
	if msg.ID == "" {
		return // about the whole push: its repository, its digest
	}
	state, detail := layerState(msg)
	if state == "" || l.state[msg.ID] == state {
		return
	}
	l.state[msg.ID] = state
	fmt.Fprintf(l.w, "layer %s  %s%s\n", msg.ID, state, detail)
}

// layerState maps an engine status to berth's words, "" for no news.
func layerState(msg jsonstream.Message) (state, detail string) {
	switch s := msg.Status; {
	case s == "Preparing", s == "Waiting":
		return "", ""
	case s == "Pushing":
		if msg.Progress != nil && msg.Progress.Total > 0 {
			detail = " " + humanSize(msg.Progress.Total)
		}
		return layerPushing, detail
	case s == "Pushed":
		return layerPushed, ""
	case s == "Layer already exists":
		return layerSkipped, ""
	case strings.HasPrefix(s, "Mounted from"):
		return layerMounted, ""
	case strings.HasPrefix(s, "Retrying"):
		return layerRetrying, ""
	}
	return strings.ToLower(msg.Status), ""
}

// counts is how many layers were sent and how many the registry had.
func (l *layerLog) counts() (pushed, skipped int) {
	for _, state := range l.state {
		switch state {
		case layerSkipped, layerMounted:
			skipped++
		case layerPushed:
			pushed++
		}
	}
	return pushed, skipped
}

func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
