package types

import (
	"regexp"
	"strings"
	"testing"
)

// Each rule rewritten as a BoundedRE (here and in server, cli,
// machine/local) matches what its bounded repetition matched.
func TestBoundedREMatchesTheBoundedRepetition(t *testing.T) {
	for _, tc := range []struct {
		old, expr string
		max       int
	}{
		{`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`, `^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`, 63},
		{`^[a-zA-Z0-9][a-zA-Z0-9._/-]{0,127}$`, `^[a-zA-Z0-9][a-zA-Z0-9._/-]*$`, 128},
		{`^[a-z0-9][a-z0-9_-]{0,62}$`, `^[a-z0-9][a-z0-9_-]*$`, 63},
		{`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`, `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, 63},
		{`^[a-zA-Z0-9-]{1,64}$`, `^[a-zA-Z0-9-]+$`, 64},
		{`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`, `^[A-Za-z0-9][A-Za-z0-9._-]*$`, 64},
		{`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`, `^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`, 32},
	} {
		old, b := regexp.MustCompile(tc.old), NewBoundedRE(tc.expr, tc.max)
		var inputs []string
		for _, unit := range []string{"a", "A", "0", "-", "_", ".", "/", "é", " "} {
			for _, n := range []int{0, 1, 2, tc.max - 1, tc.max, tc.max + 1, 2 * tc.max} {
				if n < 0 {
					continue
				}
				body := strings.Repeat(unit, n)
				inputs = append(inputs, body, "a"+body, body+"a", "a"+body+"a", "a"+body+"-")
			}
		}
		inputs = append(inputs, "", "a", "a-b", "-a", "a-", "A.b_c/d", "sig\n", "a\nb")
		for _, s := range inputs {
			if got, want := b.MatchString(s), old.MatchString(s); got != want {
				t.Errorf("%s on %q (%d bytes): %v, the bounded repetition %v", tc.expr, s, len(s), got, want)
			}
		}
	}
}
