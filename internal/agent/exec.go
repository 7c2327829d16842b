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
// the exit code (api/exec.go).
func (a *Agent) handleExec(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o, err := api.ParseExecOptions(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d, err := a.driverOf(r, id)
	if errors.Is(err, driver.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("task %s is not on node %s", id, a.cfg.Name))
		return
	}
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex() // HTTP/1.1: read stdin while answering
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	out := api.NewExecWriter(w, rc.Flush)
	stdin, stdinW := io.Pipe()
	resize := make(chan [2]uint16, 4)
	go readExecInput(r.Body, stdinW, resize)
	code, err := d.Exec(r.Context(), id, driver.ExecOptions{Cmd: o.Cmd, User: o.User, WorkDir: o.WorkDir, Env: o.Env, TTY: o.TTY},
		driver.ExecStreams{Stdin: stdin, Stdout: out.Stream(api.FrameStdout), Stderr: out.Stream(api.FrameStderr), Resize: resize})
	_ = stdin.Close()
	if err != nil {
		a.log.Warn("exec in task", "task", id, "err", err)
		_ = out.Frame(api.FrameError, []byte(err.Error()))
		return
	}
	_ = out.Frame(api.FrameExit, []byte(strconv.Itoa(code)))
}

// readExecInput turns the request's frames into the command's stdin and
// resizes; stdin ends at a stdin-close frame or the end of the body.
func readExecInput(body io.Reader, stdin *io.PipeWriter, resize chan<- [2]uint16) {
	defer stdin.Close()
	fr := api.NewExecReader(body)
	closed := false
	for {
		kind, p, err := fr.Next()
		if err != nil {
			return
		}
		switch kind {
		case api.FrameStdin:
			if !closed {
				if _, err := stdin.Write(p); err != nil {
					closed = true
				}
			}
		case api.FrameStdinClose:
			closed = true
			_ = stdin.Close()
		case api.FrameResize:
			rows, cols, err := api.ParseResize(p)
			if err == nil {
				select {
				case resize <- [2]uint16{rows, cols}:
				default: // a newer size comes; the command is behind
				}
			}
		}
	}
}
