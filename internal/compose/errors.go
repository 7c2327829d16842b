package compose

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// keyError ties an error to the key path of the Compose file it is about,
// so the user reads "services.web.ports[0]: ..." and knows where to look.
type keyError struct {
	path string
	err  error
}

func (e *keyError) Error() string { return e.path + ": " + e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

// atKey puts err under key: an error that already names a key below it
// gets its path extended, any other error gets key as its path.
func atKey(key string, err error) error {
	if err == nil {
		return nil
	}
	var ke *keyError
	if errors.As(err, &ke) && ke == err {
		sep := "."
		if strings.HasPrefix(ke.path, "[") {
			sep = ""
		}
		return &keyError{path: key + sep + ke.path, err: ke.err}
	}
	return &keyError{path: key, err: err}
}

// Errors are every problem found in the Compose files, in a stable order
// (by key path), so a file with three mistakes is fixed in one round.
type Errors []error

func (e Errors) Error() string {
	if len(e) == 1 {
		return e[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems; fix them all:", len(e))
	for _, err := range e {
		b.WriteString("\n  " + err.Error())
	}
	return b.String()
}

func (e Errors) Unwrap() []error { return e }

// sortErrors sorts errs by their text (which starts with the key path) and
// drops duplicates, so the order never depends on map iteration.
func sortErrors(errs []error) []error {
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return slices.CompactFunc(errs, func(a, b error) bool { return a.Error() == b.Error() })
}
