package state

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// Writes never modify an object already in the store (readers share it);
// they store a modified copy made by these functions.

// cloneApp deep-copies an app. Apps are written rarely and are deeply nested,
// so a JSON round trip is simpler and safer than a hand-written copy that
// would have to follow every new field of types.Service.
func cloneApp(a *types.App) *types.App {
	b, err := json.Marshal(a)
	if err != nil {
		panic("state: clone app: " + err.Error()) // plain data: cannot fail
	}
	var c types.App
	if err := json.Unmarshal(b, &c); err != nil {
		panic("state: clone app: " + err.Error())
	}
	return &c
}

// cloneTask copies a task; every field is a value but ExitCode.
func cloneTask(t *types.Task) *types.Task {
	c := *t
	if t.ExitCode != nil {
		code := *t.ExitCode
		c.ExitCode = &code
	}
	c.Addresses = maps.Clone(t.Addresses)
	return &c
}

// cloneNode copies a node and its maps and slices.
func cloneNode(n *types.Node) *types.Node {
	c := *n
	c.Labels = maps.Clone(n.Labels)
	c.Drivers = slices.Clone(n.Drivers)
	return &c
}

var zeroTime time.Time

// jsonEqual reports whether a and b encode to the same JSON (map keys are
// sorted by encoding/json, so the comparison is stable).
func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
