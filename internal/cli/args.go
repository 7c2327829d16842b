package cli

import "strings"

// valueFlags are the global flags that take a value, so normalizeArgs can
// tell a flag's value from the verb.
var valueFlags = map[string]bool{
	"--addr": true, "-f": true, "--file": true, "-p": true, "--project-name": true,
	"--project-directory": true, "--profile": true, "--env-file": true,
	"-o": true, "--output": true,
}

// shortBeforeVerb are the global short flags that mean something else
// after some verbs: `logs -f` follows, `run -p` publishes (as in docker
// compose). Before the verb they are spelled long, so cobra, which has no
// notion of position, reads them as the global flags.
var shortBeforeVerb = map[string]string{"-f": "--file", "-p": "--project-name"}

// normalizeArgs spells the flags of shortBeforeVerb given before the verb
// long.
func normalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		long, short := shortBeforeVerb[a], ""
		if len(a) > 2 && !strings.HasPrefix(a, "--") {
			short = shortBeforeVerb[a[:2]]
		}
		switch {
		case a == "--" || !strings.HasPrefix(a, "-"):
			return append(out, args[i:]...) // the verb: the rest is its own
		case long != "":
			out = append(out, long)
		case short != "":
			out = append(out, short+"="+strings.TrimPrefix(a[2:], "="))
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
