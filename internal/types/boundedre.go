package types

import "regexp"

// BoundedRE is a regular expression and a limit on the length of what it
// matches. A name rule written with a bounded repetition, such as
// `^[a-z0-9][a-z0-9_-]{0,62}$`, compiles to one program state per
// repetition: 50-100 KB and a thousand allocations each, built at init in
// every berth process (agents and CLI calls too) and kept. The same rule
// as `^[a-z0-9][a-z0-9_-]*$` and a length limit is a few hundred bytes.
// The rules it replaces match ASCII only, so the length in bytes is the
// length in characters.
type BoundedRE struct {
	re  *regexp.Regexp
	max int
}

// NewBoundedRE compiles expr (panicking if it is invalid, as
// regexp.MustCompile) for strings of at most max bytes.
func NewBoundedRE(expr string, max int) BoundedRE {
	return BoundedRE{re: regexp.MustCompile(expr), max: max}
}

// MatchString reports whether s is at most max bytes long and matches.
func (b BoundedRE) MatchString(s string) bool {
	return len(s) <= b.max && b.re.MatchString(s)
}
