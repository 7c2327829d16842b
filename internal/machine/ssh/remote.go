package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	xssh "golang.org/x/crypto/ssh"
)

// remote is a logged-in connection to a host, with the prefix its
// commands need (sudo for a user other than root).
type remote struct {
	c    *xssh.Client
	sudo bool
}

// maxOutput bounds what run keeps of a command's output.
const maxOutput = 64 << 10

// run runs a shell command on the host and returns its output (stdout and
// stderr). A non-zero exit is an error that ends with the output's tail.
func (r *remote) run(ctx context.Context, cmd string, stdin io.Reader) (string, error) {
	s, err := r.c.NewSession()
	if err != nil {
		return "", fmt.Errorf("open an SSH session: %w", err)
	}
	defer s.Close()
	var out capWriter
	s.Stdout, s.Stderr, s.Stdin = &out, &out, stdin
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	err = s.Run(r.wrap(cmd))
	if ctx.Err() != nil {
		return out.String(), ctx.Err()
	}
	if err != nil {
		var ee *xssh.ExitError
		if errors.As(err, &ee) {
			return out.String(), fmt.Errorf("exit status %d: %s", ee.ExitStatus(), tail(out.String(), 5))
		}
		return out.String(), err
	}
	return out.String(), nil
}

// wrap runs cmd in sh, as root.
func (r *remote) wrap(cmd string) string {
	if r.sudo {
		return "sudo -n sh -c " + quote(cmd)
	}
	return "sh -c " + quote(cmd)
}

// quote makes s one shell word.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// quoteAll quotes each word and joins them.
func quoteAll(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = quote(w)
	}
	return strings.Join(q, " ")
}

// tail is the last n non-empty lines of s, joined by " | ".
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// capWriter keeps the last maxOutput bytes written to it.
type capWriter struct{ b bytes.Buffer }

func (w *capWriter) Write(p []byte) (int, error) {
	w.b.Write(p)
	if over := w.b.Len() - maxOutput; over > 0 {
		w.b.Next(over)
	}
	return len(p), nil
}

func (w *capWriter) String() string { return w.b.String() }
