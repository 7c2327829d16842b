package docker

import "github.com/berth-dev/berth/internal/types"

// PortHeld is the error for a task whose published port the node cannot
// take because a process holds it (the agent's routing mesh found it
// taken), in the same words as a start the engine refused for it.
func PortHeld(p types.Port, err error) error {
	holder := listeningProcess(protocolOf(p), int(p.Published))
	if holder == "" {
		holder = "a process on the node"
	}
	return &portTakenError{port: p, holder: holder, err: err}
}
