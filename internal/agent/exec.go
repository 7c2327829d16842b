package agent

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
)

// handleExec runs a command in a task (berth exec), framed both ways: the
// request body brings stdin and resizes, the answer the output and, last,
// the exit code (api/exec.go). The request is full duplex.
func (a *Agent) handleExec(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o, err := api.ParseExecOptions(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	a.serveDuplex(w, r, id, "an exec", func(d driver.Driver, s driver.ExecStreams) (int, error) {
		return d.Exec(r.Context(), id,
			driver.ExecOptions{Cmd: o.Cmd, User: o.User, WorkDir: o.WorkDir, Env: o.Env, TTY: o.TTY, Detach: o.Detach, Rows: o.Rows, Cols: o.Cols}, s)
	})
}

// serveDuplex answers an exec-framed, full duplex request about task id
// (an exec, berth run's attach): run gets the streams and returns the exit
// code, sent last; an error is sent as an error frame instead.
func (a *Agent) serveDuplex(w http.ResponseWriter, r *http.Request, id, what string, run func(driver.Driver, driver.ExecStreams) (int, error)) {
	d, ok := a.taskDriver(w, r, id)
	if !ok {
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("this agent cannot stream %s both ways: %v", what, err))
		return
	}
	// The first frame, read before the answer, so that a caller that
	// asked "Expect: 100-continue" is told to go on (api/exec.go).
	fr := api.NewExecReader(r.Body)
	if kind, p, err := fr.Next(); err != nil || kind != api.FrameStdin || len(p) > 0 {
		writeError(w, http.StatusBadRequest, "the stream must start with an empty stdin frame")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	out := api.NewExecWriter(w, rc.Flush)
	stdin, stdinW := io.Pipe()
	resize := make(chan [2]uint16, 1)
	go readExecInput(fr, stdinW, resize)
	code, err := run(d, driver.ExecStreams{Stdin: stdin, Stdout: out.Stream(api.FrameStdout), Stderr: out.Stream(api.FrameStderr), Resize: resize})
	_ = stdin.Close() // ends the driver's stdin copy, if the command read none
	if err != nil {
		a.log.Warn(what+" in task", "task", id, "err", err)
		_ = out.Frame(api.FrameError, []byte(fmt.Sprintf("node %s: %v", a.cfg.Name, err)))
		return
	}
	_ = out.Frame(api.FrameExit, []byte(strconv.Itoa(code)))
}

// readExecInput turns the request's frames into the command's stdin and
// resizes; stdin ends at a stdin-close frame or the end of the body. Only
// the newest size waits for a command that is behind.
func readExecInput(fr *api.ExecReader, stdin *io.PipeWriter, resize chan [2]uint16) {
	defer stdin.Close()
	for {
		kind, p, err := fr.Next()
		if err != nil {
			return
		}
		switch kind {
		case api.FrameStdin:
			if len(p) > 0 {
				_, _ = stdin.Write(p) // fails only once the command is gone
			}
		case api.FrameStdinClose:
			_ = stdin.Close()
		case api.FrameResize:
			rows, cols, err := api.ParseResize(p)
			if err != nil {
				continue
			}
			select {
			case <-resize:
			default:
			}
			resize <- [2]uint16{rows, cols}
		}
	}
}

// handleArchive answers berth cp: GET writes a tar of ?path= in the task,
// PUT extracts the tar in the body there (at most api.MaxCopyBytes).
func (a *Agent) handleArchive(w http.ResponseWriter, r *http.Request) {
	id, p := r.PathValue("id"), r.URL.Query().Get("path")
	if p == "" || p[0] != '/' {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("path: %q is not an absolute path in the task", p))
		return
	}
	d, ok := a.taskDriver(w, r, id)
	if !ok {
		return
	}
	if r.Method == http.MethodPut {
		err := d.CopyTo(r.Context(), id, p, api.MaxCopyBytes, http.MaxBytesReader(w, r.Body, api.MaxCopyBytes))
		if err != nil {
			writeError(w, archiveStatus(err), err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	rc := http.NewResponseController(w)
	started := false
	start := func() {
		started = true
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush() // the manager learns now that the copy goes ahead
	}
	err := d.CopyFrom(r.Context(), id, p, api.MaxCopyBytes, start, flushWriter{w, rc})
	switch {
	case err != nil && !started:
		writeError(w, archiveStatus(err), err.Error())
	case err != nil:
		// The status is sent: cut the stream, so the caller sees a tar
		// that ends early rather than one that looks whole.
		a.log.Warn("copy from task failed midway", "task", id, "path", p, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// archiveStatus is the HTTP status of a copy that failed before its answer.
func archiveStatus(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, driver.ErrPathNotFound), errors.Is(err, driver.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, driver.ErrCopyUnsupported):
		return http.StatusUnprocessableEntity
	case errors.As(err, &tooBig), errors.Is(err, driver.ErrCopyTooLarge):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadGateway
}

// flushWriter flushes every write, so a stream moves as it is written.
type flushWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, f.rc.Flush()
}
