package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// maxTokenFile bounds what --token-file reads: a join token is a line of
// some 100 bytes.
const maxTokenFile = 4 << 10

// joinToken is the join token of `berth agent` and `berth server`: --token,
// or else the contents of --token-file. A token on the command line can be
// read by every local user in /proc/PID/cmdline; a file only its owner
// reads cannot, so the machine drivers use --token-file. A missing file
// is no token (a node that has joined needs none, and the drivers remove
// the file once the node is ready), and a file that others may read is
// refused.
func joinToken(token, file string) (string, error) {
	if file == "" {
		return token, nil
	}
	if token != "" {
		return "", errors.New("--token and --token-file both give the join token; give one")
	}
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read --token-file %s: %w", file, pathErrCause(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("read --token-file %s: %w", file, pathErrCause(err))
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("--token-file %s may be read by other users (mode %04o): make it the owner's only with chmod 600 %s", file, st.Mode().Perm(), file)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("read --token-file %s: %w", file, pathErrCause(err))
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("--token-file %s holds more than %d bytes; it should hold one join token", file, maxTokenFile)
	}
	return strings.TrimSpace(string(b)), nil
}

// pathErrCause drops the operation and path of a *PathError, which the
// message names already.
func pathErrCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
