package compose

import (
	"errors"
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
