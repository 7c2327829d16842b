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
	"strings"
	"sync"
)

// Exec paths: the CLI asks the manager, which forwards to the agent of the
// task's node, as logs go (server/exec.go).
const (
	PathTaskExec      = "/v1/tasks/{id}/exec"       // POST ?cmd=&user=&workdir=&env=&tty= (framed both ways)
	PathAgentTaskExec = "/v1/agent/tasks/{id}/exec" // POST, the same, from the manager
)

// Exec frame kinds. A frame is a kind byte, a uvarint length and that many
// bytes. The request body carries stdin, resize and stdin-close frames; the
// answer stdout and stderr frames and, last, exit (the code in decimal) or
// error (a message: berth or the node failed, the command's fate unknown).
//
// A request's first frame is an empty stdin frame, which means nothing
// else: Go's HTTP/1.1 transport sends a request's headers with the first
// bytes of its body (or after 200 ms), and the agent reads it before it
// answers, which makes a server that was asked "Expect: 100-continue" say
// so before its answer.
//
// Requests carry "Expect: 100-continue" (ExpectContinue) so that any
// answer before the body is read (a refused credential, a bad query, a
// task not found) comes back at once: an HTTP/1.1 server that answers
// early otherwise first reads the body to its end, which a stream of stdin
// never reaches.
const (
	FrameStdin      byte = 1
	FrameStdout     byte = 2
	FrameStderr     byte = 3
	FrameResize     byte = 4 // "ROWSxCOLS"
	FrameStdinClose byte = 5
	FrameExit       byte = 6
	FrameError      byte = 7
)

// ExpectContinue is the header a streaming request (exec, a copy in)
// carries; see the frame kinds above.
const ExpectContinue = "100-continue"

// Bounds of an exec request: its arguments and environment entries, and
// the bytes of all of them together (they travel in the query string).
const (
	MaxExecArgs  = 256
	MaxExecBytes = 64 << 10
)

// ExecOptions is what to run in a task.
type ExecOptions struct {
	Cmd     []string
	User    string
	WorkDir string
	Env     []string
	TTY     bool
	// Detach starts the command and answers at once with exit code 0,
	// leaving it to run (docker exec -d).
	Detach bool
	// Rows and Cols are the terminal's size when the command starts (TTY).
	Rows, Cols uint16
}

func (o ExecOptions) values() url.Values {
	q := url.Values{"cmd": o.Cmd}
	if len(o.Env) > 0 {
		q["env"] = o.Env
	}
	if o.User != "" {
		q.Set("user", o.User)
	}
	if o.WorkDir != "" {
		q.Set("workdir", o.WorkDir)
	}
	if o.TTY {
		q.Set("tty", "true")
	}
	if o.Detach {
		q.Set("detach", "true")
	}
	if o.Rows > 0 && o.Cols > 0 {
		q.Set("size", fmt.Sprintf("%dx%d", o.Rows, o.Cols))
	}
	return q
}

// ParseExecOptions reads ExecOptions from a request's query, naming the
// field that is wrong.
func ParseExecOptions(q url.Values) (ExecOptions, error) {
	o := ExecOptions{Cmd: q["cmd"], Env: q["env"], User: q.Get("user"), WorkDir: q.Get("workdir")}
	if len(o.Cmd) == 0 || o.Cmd[0] == "" {
		return o, errors.New("cmd: a command to run is required")
	}
	if len(o.Cmd) > MaxExecArgs {
		return o, fmt.Errorf("cmd: %d arguments, at most %d", len(o.Cmd), MaxExecArgs)
	}
	if len(o.Env) > MaxExecArgs {
		return o, fmt.Errorf("env: %d entries, at most %d", len(o.Env), MaxExecArgs)
	}
	size := len(o.User) + len(o.WorkDir)
	for _, s := range append(append([]string(nil), o.Cmd...), o.Env...) {
		size += len(s)
	}
	if size > MaxExecBytes {
		return o, fmt.Errorf("cmd: the command and environment are %d bytes, at most %d", size, MaxExecBytes)
	}
	for _, e := range o.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return o, fmt.Errorf("env: %q is not KEY=VALUE", e)
		}
	}
	for _, b := range []struct {
		key string
		to  *bool
	}{{"tty", &o.TTY}, {"detach", &o.Detach}} {
		if v := q.Get(b.key); v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return o, fmt.Errorf("%s: %q is not true or false", b.key, v)
			}
			*b.to = on
		}
	}
	if v := q.Get("size"); v != "" {
		r, c, err := ParseResize([]byte(v))
		if err != nil {
			return o, fmt.Errorf("size: %q is not ROWSxCOLS", v)
		}
		o.Rows, o.Cols = r, c
	}
	return o, nil
}

// ExecWriter writes exec frames; it is safe for concurrent use.
type ExecWriter struct {
	mu    sync.Mutex
	w     io.Writer
	flush func() error
}

// NewExecWriter writes frames to w, calling flush (if not nil) after each,
// so output reaches the user as the command writes it.
func NewExecWriter(w io.Writer, flush func() error) *ExecWriter {
	return &ExecWriter{w: w, flush: flush}
}

// Frame sends one frame of kind; a long p goes as several. Each frame is
// one Write, so a chunked HTTP/1.1 body carries it as one chunk.
func (f *ExecWriter) Frame(kind byte, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for first := true; first || len(p) > 0; first = false {
		n := min(len(p), maxFrame)
		buf := make([]byte, 0, 1+binary.MaxVarintLen64+n)
		buf = append(buf, kind)
		buf = binary.AppendUvarint(buf, uint64(n))
		buf = append(buf, p[:n]...)
		if _, err := f.w.Write(buf); err != nil {
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

// Next returns the next frame; its payload is at most maxFrame bytes. A
// stream that ends between frames gives io.EOF, one cut inside a frame
// io.ErrUnexpectedEOF.
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
// command's stdin at its end; nil closes it at once), output is written
// out, sizes from Resize are sent on (with a TTY).
type ExecIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Resize         <-chan [2]uint16 // rows, cols
}

// ExecError is an exec that failed in berth or on the node (the engine
// refused it, the stream was cut): the command's exit code is unknown.
type ExecError struct{ Message string }

func (e *ExecError) Error() string { return e.Message }

// Exec runs a command in a task and streams it; it returns the command's
// exit code. The request is full duplex: its body carries stdin while the
// answer carries output, over HTTP/1.1 (plain loopback) or HTTP/2 (TLS).
// It has no deadline of its own: an interactive command lasts as long as
// the user wants; ctx ends it.
func (c *Client) Exec(ctx context.Context, taskID string, o ExecOptions, sio ExecIO) (int, error) {
	return c.duplex(ctx, fill(PathTaskExec, taskID), o.values(), sio)
}

// duplex is an exec-framed request to path (an exec, or an attach to a
// one-off's main process): stdin and resizes go up, output comes back
// until the exit frame, whose code it returns.
func (c *Client) duplex(ctx context.Context, path string, q url.Values, sio ExecIO) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close() // ends the request body once the answer is read
	u := c.base() + path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, pr)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Expect", ExpectContinue)
	c.authorize(req)
	in := NewExecWriter(pw, nil)
	go sendExecInput(ctx, in, sio)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return 0, decodeError(resp)
	}
	return readExecOutput(NewExecReader(resp.Body), sio.Stdout, sio.Stderr)
}

// sendExecInput writes the request's frames: the empty first one, stdin
// until it ends, then stdin-close, and resizes as they come. It ends with
// ctx (the exec); a Stdin read that blocks ends with the process.
func sendExecInput(ctx context.Context, in *ExecWriter, sio ExecIO) {
	if in.Frame(FrameStdin, nil) != nil {
		return
	}
	if sio.Resize != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case sz, ok := <-sio.Resize:
					if !ok {
						return
					}
					if in.Frame(FrameResize, fmt.Appendf(nil, "%dx%d", sz[0], sz[1])) != nil {
						return
					}
				}
			}
		}()
	}
	if sio.Stdin != nil {
		if _, err := io.Copy(in.Stream(FrameStdin), sio.Stdin); err != nil && ctx.Err() != nil {
			return
		}
	}
	_ = in.Frame(FrameStdinClose, nil)
}

// readExecOutput writes stdout and stderr frames out until the exit frame.
func readExecOutput(fr *ExecReader, stdout, stderr io.Writer) (int, error) {
	for {
		kind, p, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return 0, &ExecError{Message: "the exec stream ended before the command's exit code came"}
		}
		if err != nil {
			return 0, &ExecError{Message: err.Error()}
		}
		switch kind {
		case FrameStdout:
			if _, err := stdout.Write(p); err != nil {
				return 0, err
			}
		case FrameStderr:
			if _, err := stderr.Write(p); err != nil {
				return 0, err
			}
		case FrameExit:
			code, err := strconv.Atoi(string(p))
			if err != nil {
				return 0, &ExecError{Message: fmt.Sprintf("bad exit frame %q", p)}
			}
			return code, nil
		case FrameError:
			return 0, &ExecError{Message: string(p)}
		}
	}
}

// ParseResize reads a resize frame's "ROWSxCOLS".
func ParseResize(p []byte) (rows, cols uint16, err error) {
	r, c, ok := strings.Cut(string(p), "x")
	rn, err1 := strconv.ParseUint(r, 10, 16)
	cn, err2 := strconv.ParseUint(c, 10, 16)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("resize frame %q is not ROWSxCOLS", p)
	}
	return uint16(rn), uint16(cn), nil
}
