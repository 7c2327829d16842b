package cli

import "strconv"

// countOf writes n with the noun in the right number: "1 task", "3 tasks".
func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
