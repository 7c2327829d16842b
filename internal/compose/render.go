package compose

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/berth-dev/berth/internal/types"
)

// renderedApp is what `berth config` shows: the spec the user wrote,
// resolved, without the manager's bookkeeping and with no secret content.
type renderedApp struct {
	Name     string                    `json:"name"`
	Services []*types.Service          `json:"services"`
	Networks map[string]*types.Network `json:"networks,omitempty"`
	Volumes  map[string]*types.Volume  `json:"volumes,omitempty"`
	Secrets  map[string]renderedFile   `json:"secrets,omitempty"`
	Configs  map[string]renderedFile   `json:"configs,omitempty"`
}

type renderedFile struct {
	Name     string `json:"name"`
	Data     string `json:"data"` // "<N bytes>", never the content
	External bool   `json:"external,omitempty"`
}

// Render writes app as YAML, in the field order of the types, for
// `berth config`. Secret and config content is shown as its size only.
func Render(w io.Writer, app *types.App) error {
	r := renderable(app)
	// JSON first, so the output uses the types' json names; decoding JSON
	// into a yaml.Node keeps the field order that a map would lose.
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("render app %s: %w", app.Name, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("render app %s: %w", app.Name, err)
	}
	blockStyle(&doc)
	readableDurations(&doc)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("render app %s: %w", app.Name, err)
	}
	return enc.Close()
}

func renderFiles(in map[string]*types.Secret) map[string]renderedFile {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]renderedFile, len(in))
	for k, s := range in {
		out[k] = renderedFile{Name: s.Name, Data: fmt.Sprintf("<%d bytes>", len(s.Data)), External: s.External}
	}
	return out
}

// blockStyle drops the flow style and quotes that the JSON source carried;
// the encoder quotes again the strings that need it.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// durationKeys are the App fields that hold a time.Duration, which JSON
// carries as nanoseconds.
var durationKeys = map[string]bool{
	"stop_grace_period": true, "delay": true, "window": true,
	"interval": true, "timeout": true, "start_period": true, "start_interval": true,
}

// readableDurations rewrites the nanosecond counts of durationKeys as
// durations ("20s"), as the user wrote them.
func readableDurations(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			if !durationKeys[key.Value] || val.Kind != yaml.ScalarNode {
				continue
			}
			if ns, err := strconv.ParseInt(val.Value, 10, 64); err == nil {
				val.Value, val.Tag = time.Duration(ns).String(), "!!str"
			}
		}
	}
	for _, c := range n.Content {
		readableDurations(c)
	}
}
