package docker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
)

// pullTracker sums up an engine pull's JSON stream, one message per layer
// event, into one line for the task state: "pulling image web: 3 of 5
// layers, 40 MB of 100 MB".
type pullTracker struct {
	name   string
	layers map[string]*layerProgress
	last   string
}

type layerProgress struct {
	current, total int64
	done           bool
	// present: the engine had the layer already; it downloads nothing.
	present bool
}

func newPullTracker(name string) *pullTracker {
	return &pullTracker{name: name, layers: map[string]*layerProgress{}}
}

// add takes one message of the stream and reports whether the line changed.
func (t *pullTracker) add(m jsonstream.Message) bool {
	if m.ID == "" {
		return false
	}
	l := t.layers[m.ID]
	switch m.Status {
	case "Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", "Download complete",
		"Extracting", "Pull complete", "Already exists":
		if l == nil {
			l = &layerProgress{}
			t.layers[m.ID] = l
		}
	default:
		// "Pulling from app/web", "Digest: ...", a retry: not a layer's news.
		return false
	}
	switch m.Status {
	case "Downloading":
		if m.Progress != nil {
			l.current, l.total = m.Progress.Current, max(m.Progress.Total, l.total)
		}
	case "Verifying Checksum", "Download complete", "Extracting":
		l.current = l.total
	case "Pull complete":
		l.current, l.done = l.total, true
	case "Already exists":
		l.done, l.present = true, true
	}
	s := t.String()
	changed := s != t.last
	t.last = s
	return changed
}

// String is the progress line.
func (t *pullTracker) String() string {
	done := 0
	var cur, total int64
	for _, l := range t.layers {
		if l.done {
			done++
		}
		if !l.present {
			cur, total = cur+l.current, total+l.total
		}
	}
	s := fmt.Sprintf("pulling image %s: %d of %d layers", t.name, done, len(t.layers))
	if total > 0 {
		s += fmt.Sprintf(", %s of %s", sizeText(cur), sizeText(total))
	}
	return s
}

// sizeText is a byte count in decimal units, as docker pull shows them.
func sizeText(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000*1000:
		return fmt.Sprintf("%d kB", (n+500)/1000)
	case n < 1000*1000*1000:
		return fmt.Sprintf("%d MB", (n+500*1000)/(1000*1000))
	}
	return fmt.Sprintf("%.1f GB", float64(n)/1e9)
}

// progressEvery bounds how often one pull tells its watchers: each word
// becomes a write to the cluster's state.
const progressEvery = time.Second

// pullGroup joins concurrent pulls of one reference: the first caller
// pulls, the others wait for its result, and all of them hear its
// progress. Ten replicas of one image on a node start one pull.
type pullGroup struct {
	mu      sync.Mutex
	flights map[string]*pullFlight
}

type pullFlight struct {
	done chan struct{}
	err  error

	mu       sync.Mutex
	watchers []func(string)
	last     string
	told     time.Time
}

// do runs pull for ref unless a pull of ref is under way, and returns its
// result. watch (nil: none) hears the pull's progress.
func (g *pullGroup) do(ctx context.Context, ref string, watch func(string), pull func(progress func(string)) error) error {
	g.mu.Lock()
	if g.flights == nil {
		g.flights = map[string]*pullFlight{}
	}
	f, joined := g.flights[ref]
	if !joined {
		f = &pullFlight{done: make(chan struct{})}
		g.flights[ref] = f
	}
	f.watch(watch)
	g.mu.Unlock()
	if joined {
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.err = pull(f.tell)
	g.mu.Lock()
	delete(g.flights, ref)
	g.mu.Unlock()
	close(f.done)
	return f.err
}

// watch adds a watcher and tells it where the pull is.
func (f *pullFlight) watch(w func(string)) {
	if w == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watchers = append(f.watchers, w)
	if f.last != "" {
		w(f.last)
	}
}

// tell passes a progress line to the watchers: the first at once, later
// ones at most every progressEvery; a watcher that joins later hears the
// latest at once.
func (f *pullFlight) tell(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = msg
	if !f.told.IsZero() && time.Since(f.told) < progressEvery {
		return
	}
	f.told = time.Now()
	for _, w := range f.watchers {
		w(msg)
	}
}
