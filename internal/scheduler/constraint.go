package scheduler

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/types"
)

// constraint is one parsed placement constraint such as
// "node.labels.zone==a" or "node.role!=manager".
type constraint struct {
	attr  string // "node.id", "node.hostname", "node.role" or "node.labels.<key>"
	label string // the label key when attr is a label, else ""
	equal bool   // "==" when true, "!=" when false
	value string
}

// String renders the constraint the way reasons name it, without spaces.
func (c constraint) String() string {
	op := "!="
	if c.equal {
		op = "=="
	}
	return c.attr + op + c.value
}

// parseConstraint reads "ATTR==VALUE" or "ATTR!=VALUE" (spaces around the
// operator are allowed, as in Compose files written by hand).
func parseConstraint(s string) (constraint, error) {
	var c constraint
	i := strings.Index(s, "==")
	j := strings.Index(s, "!=")
	switch {
	case i >= 0 && (j < 0 || i < j):
		c.equal = true
	case j >= 0:
		i = j
	default:
		return c, fmt.Errorf("placement constraint %q: want ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE", s)
	}
	c.attr = strings.TrimSpace(s[:i])
	c.value = strings.TrimSpace(s[i+2:])
	switch {
	case c.attr == "node.id", c.attr == "node.hostname", c.attr == "node.role":
	case strings.HasPrefix(c.attr, "node.labels.") && len(c.attr) > len("node.labels."):
		c.label = strings.TrimPrefix(c.attr, "node.labels.")
	default:
		return c, fmt.Errorf("placement constraint %q: unknown attribute %q (use node.id, node.hostname, node.role or node.labels.KEY)", s, c.attr)
	}
	return c, nil
}

// matches reports whether the node satisfies the constraint. A missing label
// never equals a value, so "!=" accepts nodes without the label. Hostnames
// and roles compare case-insensitively, as DNS names do; IDs and labels are
// exact.
func (c constraint) matches(n *types.Node) bool {
	var got string
	var has, fold bool
	switch c.attr {
	case "node.id":
		got, has = n.ID, true
	case "node.hostname":
		got, has, fold = n.Name, true, true
	case "node.role":
		got, has, fold = n.Role, true, true
	default:
		got, has = n.Labels[c.label]
	}
	eq := has && (got == c.value || fold && strings.EqualFold(got, c.value))
	return eq == c.equal
}

// parsePreference reads a spread preference: "node.labels.KEY", optionally
// written as Swarm's "spread=node.labels.KEY". It returns the label key.
func parsePreference(s string) (string, error) {
	p := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "spread="))
	key, ok := strings.CutPrefix(p, "node.labels.")
	if !ok || key == "" {
		return "", fmt.Errorf("placement preference %q: only spread over node.labels.KEY is supported", s)
	}
	return key, nil
}
