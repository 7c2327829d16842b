package api

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
)

// Exec paths: the CLI asks the manager, which forwards to the agent of the
// task's node, as logs go (server/exec.go).
const (
	PathTaskExec      = "/v1/tasks/{id}/exec"       // POST ?cmd=&user=&workdir=&env=&tty= (framed both ways)
	PathAgentTaskExec = "/v1/agent/tasks/{id}/exec" // POST, the same, from the manager
)

// Exec frame kinds. A frame is a kind byte, a uvarint length and that many
// bytes; the request body carries stdin, resize and stdin-close frames, the
// answer stdout, stderr and, last, exit (the code as decimal) or error.
const (
	FrameStdin      byte = 1
	FrameStdout     byte = 2
	FrameStderr     byte = 3
	FrameResize     byte = 4 // "ROWSxCOLS"
	FrameStdinClose byte = 5
	FrameExit       byte = 6
	FrameError      byte = 7
)

// MaxExecArgs bounds a command's arguments and environment entries.
const MaxExecArgs = 256

// ExecOptions is what to run in a task.
type ExecOptions struct {
	Cmd     []string
	User    string
	WorkDir string
	Env     []string
	TTY     bool
}

func (o ExecOptions) values() url.Values {
	q := url.Values{"cmd": o.Cmd, "env": o.Env}
	if o.User != "" {
		q.Set("user", o.User)
	}
	if o.WorkDir != "" {
		q.Set("workdir", o.WorkDir)
	}
	if o.TTY {
		q.Set("tty", "true")
	}
	return q
}

// ParseExecOptions reads ExecOptions from a request's query, naming the
// field that is wrong.
func ParseExecOptions(q url.Values) (ExecOptions, error) {
	o := ExecOptions{Cmd: q["cmd"], Env: q["env"], User: q.Get("user"), WorkDir: q.Get("workdir")}
	if len(o.Cmd) == 0 {
		return o, errors.New("cmd: a command to run is required")
	}
	if len(o.Cmd) > MaxExecArgs || len(o.Env) > MaxExecArgs {
		return o, fmt.Errorf("cmd: at most %d arguments and %d environment entries", MaxExecArgs, MaxExecArgs)
	}
	for _, e := range o.Env {
		if k, _, ok := cutEnv(e); !ok || k == "" {
			return o, fmt.Errorf("env: %q is not KEY=VALUE", e)
		}
	}
	if v := q.Get("tty"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("tty: %q is not true or false", v)
		}
		o.TTY = b
	}
	return o, nil
}

func cutEnv(e string) (string, string, bool) {
	for i := 0; i < len(e); i++ {
		if e[i] == '=' {
			return e[:i], e[i+1:], true
		}
	}
	return e, "", false
}

// ExecWriter writes exec frames; it is safe for concurrent use.
type ExecWriter struct {
	mu    sync.Mutex
	w     io.Writer
	flush func() error
}

// NewExecWriter writes frames to w, calling flush (if not nil) after each.
func NewExecWriter(w io.Writer, flush func() error) *ExecWriter {
	return &ExecWriter{w: w, flush: flush}
}

// Frame sends one frame of kind; a long p goes as several.
func (f *ExecWriter) Frame(kind byte, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for first := true; first || len(p) > 0; first = false {
		n := min(len(p), maxFrame)
		var hdr [1 + binary.MaxVarintLen64]byte
		hdr[0] = kind
		l := 1 + binary.PutUvarint(hdr[1:], uint64(n))
		if _, err := f.w.Write(hdr[:l]); err != nil {
			return err
		}
		if _, err := f.w.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	if f.flush != nil {
		return f.flush()
	}
	return nil
}

// Stream returns a writer that sends what it is given as frames of kind.
func (f *ExecWriter) Stream(kind byte) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		if len(p) == 0 {
			return 0, nil
		}
		if err := f.Frame(kind, p); err != nil {
			return 0, err
		}
		return len(p), nil
	})
}

// ExecReader reads exec frames.
type ExecReader struct{ r *bufio.Reader }

// NewExecReader reads frames from r.
func NewExecReader(r io.Reader) *ExecReader { return &ExecReader{r: bufio.NewReader(r)} }

// Next returns the next frame; its payload is at most maxFrame bytes.
func (f *ExecReader) Next() (byte, []byte, error) {
	kind, err := f.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, err := binary.ReadUvarint(f.r)
	if err != nil {
		return 0, nil, fmt.Errorf("exec stream cut inside a frame header: %w", io.ErrUnexpectedEOF)
	}
	if n > maxFrame {
		return 0, nil, fmt.Errorf("exec frame of %d bytes is over the limit of %d", n, maxFrame)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(f.r, p); err != nil {
		return 0, nil, fmt.Errorf("exec stream cut inside a frame: %w", io.ErrUnexpectedEOF)
	}
	return kind, p, nil
}

// ExecIO is the caller's side of an exec: Stdin is copied in (closing the
// command's stdin at its end), output is written out, Resize is sent on.
type ExecIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Resize         <-chan [2]uint16 // rows, cols
}

// Exec runs a command in a task and streams it; it returns the command's
// exit code.
func (c *Client) Exec(ctx context.Context, taskID string, o ExecOptions, sio ExecIO) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	u := c.base() + fill(PathTaskExec, taskID) + "?" + o.values().Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, pr)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	c.authorize(req)
	in := NewExecWriter(pw, nil)
	go func() {
		if sio.Stdin != nil {
			_, _ = io.Copy(in.Stream(FrameStdin), sio.Stdin)
		}
		_ = in.Frame(FrameStdinClose, nil)
	}()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sz, ok := <-sio.Resize:
				if !ok {
					return
				}
				_ = in.Frame(FrameResize, fmt.Appendf(nil, "%dx%d", sz[0], sz[1]))
			}
		}
	}()
	resp, err := c.http.Do(req)
	if err != nil {
		pw.CloseWithError(err)
		return 0, err
	}
	defer resp.Body.Close()
	defer pw.Close()
	if resp.StatusCode >= 300 {
		return 0, decodeError(resp)
	}
	fr := NewExecReader(resp.Body)
	for {
		kind, p, err := fr.Next()
		if err != nil {
			if err == io.EOF {
				return 0, errors.New("the exec stream ended before the command's exit code came")
			}
			return 0, err
		}
		switch kind {
		case FrameStdout:
			if _, err := sio.Stdout.Write(p); err != nil {
				return 0, err
			}
		case FrameStderr:
			if _, err := sio.Stderr.Write(p); err != nil {
				return 0, err
			}
		case FrameExit:
			code, err := strconv.Atoi(string(p))
			if err != nil {
				return 0, fmt.Errorf("bad exit frame %q", p)
			}
			return code, nil
		case FrameError:
			return 0, &Error{Status: http.StatusBadGateway, Message: string(p)}
		}
	}
}

// ParseResize reads a resize frame's "ROWSxCOLS".
func ParseResize(p []byte) (rows, cols uint16, err error) {
	var r, c uint16
	if _, err := fmt.Sscanf(string(p), "%dx%d", &r, &c); err != nil {
		return 0, 0, fmt.Errorf("resize frame %q is not ROWSxCOLS", p)
	}
	return r, c, nil
}
