package types

import (
	"fmt"
	"time"
)

// Machine is a host berth made (`berth machine create`, `berth cluster
// create`) as the cluster records it, for every manager and client to see.
// It never holds what its driver needs to tear it down (that stays on the
// machine that made it) nor any token.
type Machine struct {
	Name    string            `json:"name"`
	Driver  string            `json:"driver"`
	Role    string            `json:"role"` // "agent" or "manager"
	Labels  map[string]string `json:"labels,omitempty"`
	Address string            `json:"address"`
	// DockerHost is the host's engine (agents), as DOCKER_HOST takes it.
	DockerHost  string    `json:"docker_host,omitempty"`
	Created     time.Time `json:"created"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// Limits of a machine record; the name is a host name, so one DNS label.
const (
	MaxMachines          = 1000 // records in one cluster
	MaxMachineLabels     = 64
	MaxMachineLabelValue = MaxLabelValue
)

var machineNameRE = NewBoundedRE(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`, 63)

// MaxLabelValue bounds a node label's value, which is free text.
const MaxLabelValue = 256

// labelKeyRE is a node label key as Docker accepts one.
var labelKeyRE = NewBoundedRE(`^[a-zA-Z0-9][a-zA-Z0-9._/-]*$`, 128)

// ValidLabelKey is the one rule for a node label's key (nodes, machines).
func ValidLabelKey(key string) bool { return labelKeyRE.MatchString(key) }

// CheckMachineName says why name cannot name a host: it must be one DNS
// label (RFC 1123), as it becomes the host's hostname and node name.
func CheckMachineName(name string) error {
	if !machineNameRE.MatchString(name) {
		return fmt.Errorf("%q is not a DNS label: use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// CheckMachineLabel says why key=value cannot label a host (the labels
// become the node's, so the rule is the node label rule).
func CheckMachineLabel(key, value string) error {
	if !ValidLabelKey(key) {
		return fmt.Errorf("label key %q is invalid: use letters, digits, '.', '_', '/' and '-', starting with a letter or digit, at most 128", key)
	}
	if len(value) > MaxMachineLabelValue {
		return fmt.Errorf("label %s: value longer than %d bytes", key, MaxMachineLabelValue)
	}
	return nil
}

// CheckMachine validates a record as a whole and returns the field at
// fault with the reason.
func CheckMachine(m *Machine) (field string, err error) {
	if err := CheckMachineName(m.Name); err != nil {
		return "name", err
	}
	if m.Driver == "" || !machineNameRE.MatchString(m.Driver) {
		return "driver", fmt.Errorf("%q is not a driver name", m.Driver)
	}
	if m.Role != "agent" && m.Role != "manager" {
		return "role", fmt.Errorf("must be agent or manager, not %q", m.Role)
	}
	if len(m.Labels) > MaxMachineLabels {
		return "labels", fmt.Errorf("at most %d labels, not %d", MaxMachineLabels, len(m.Labels))
	}
	for k, v := range m.Labels {
		if err := CheckMachineLabel(k, v); err != nil {
			return "labels." + k, err
		}
	}
	if len(m.Address) > 255 {
		return "address", fmt.Errorf("longer than 255 bytes")
	}
	if len(m.DockerHost) > 1024 {
		return "docker_host", fmt.Errorf("longer than 1024 bytes")
	}
	return "", nil
}
