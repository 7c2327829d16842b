package cli

import "strings"

// valueFlags are the global flags that take a value, so normalizeArgs can
// tell a flag's value from the verb.
var valueFlags = map[string]bool{
	"--addr": true, "-f": true, "--file": true, "-p": true, "--project-name": true,
	"--project-directory": true, "--profile": true, "--env-file": true,
	"-o": true, "--output": true,
}

// normalizeArgs spells a -f given before the verb as --file. After the
// verb, `logs -f` means follow (as in docker compose), so the short form
// must be resolved by position before cobra, which has no notion of it.
func normalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--" || !strings.HasPrefix(a, "-"):
			return append(out, args[i:]...) // the verb: the rest is its own
		case a == "-f":
			out = append(out, "--file")
		case strings.HasPrefix(a, "-f") && !strings.HasPrefix(a, "--"):
			out = append(out, "--file="+strings.TrimPrefix(strings.TrimPrefix(a, "-f"), "="))
			continue
		default:
			out = append(out, a)
		}
		if valueFlags[a] && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}
