package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestExecFramesRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("x"), maxFrame+10)
	for _, tc := range []struct {
		name    string
		kind    byte
		payload []byte
		frames  int // how many frames the payload travels as
	}{
		{"empty", FrameStdin, nil, 1},
		{"small", FrameStdout, []byte("hello"), 1},
		{"exactly the limit", FrameStderr, big[:maxFrame], 1},
		{"over the limit is split", FrameStdout, big, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			flushes := 0
			w := NewExecWriter(&buf, func() error { flushes++; return nil })
			if err := w.Frame(tc.kind, tc.payload); err != nil {
				t.Fatal(err)
			}
			if flushes != 1 {
				t.Fatalf("%d flushes, want 1 per Frame", flushes)
			}
			r := NewExecReader(&buf)
			var got []byte
			for i := range tc.frames {
				kind, p, err := r.Next()
				if err != nil || kind != tc.kind {
					t.Fatalf("frame %d: kind %d, err %v; want kind %d", i, kind, err, tc.kind)
				}
				got = append(got, p...)
			}
			if !bytes.Equal(got, tc.payload) {
				t.Fatalf("payload of %d bytes came back as %d", len(tc.payload), len(got))
			}
			if _, _, err := r.Next(); err != io.EOF {
				t.Fatalf("after the frames: %v, want io.EOF", err)
			}
		})
	}
}

func TestExecReaderRefusesBadStreams(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
		want   string
	}{
		{"cut in the header", []byte{FrameStdout, 0x80}, "cut inside a frame header"},
		{"cut in the payload", []byte{FrameStdout, 5, 'a', 'b'}, "cut inside a frame"},
		{"a length over the limit", append([]byte{FrameStdout}, uvarint(maxFrame+1)...), "over the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := NewExecReader(bytes.NewReader(tc.stream)).Next()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func uvarint(n uint64) []byte {
	var b []byte
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	return append(b, byte(n))
}

func TestParseExecOptions(t *testing.T) {
	many := make([]string, MaxExecArgs+1)
	for i := range many {
		many[i] = "a"
	}
	for _, tc := range []struct {
		name    string
		q       url.Values
		want    ExecOptions
		wantErr string
	}{
		{name: "all", q: url.Values{"cmd": {"sh", "-c", "x"}, "env": {"A=1", "B="}, "user": {"1:2"}, "workdir": {"/w"}, "tty": {"true"}, "size": {"24x80"}},
			want: ExecOptions{Cmd: []string{"sh", "-c", "x"}, Env: []string{"A=1", "B="}, User: "1:2", WorkDir: "/w", TTY: true, Rows: 24, Cols: 80}},
		{name: "detach", q: url.Values{"cmd": {"true"}, "detach": {"1"}}, want: ExecOptions{Cmd: []string{"true"}, Detach: true}},
		{name: "no command", q: url.Values{}, wantErr: "cmd: a command to run is required"},
		{name: "an empty command", q: url.Values{"cmd": {""}}, wantErr: "cmd: a command"},
		{name: "too many arguments", q: url.Values{"cmd": many}, wantErr: "cmd: 257 arguments"},
		{name: "too many env entries", q: url.Values{"cmd": {"x"}, "env": many}, wantErr: "env: 257 entries"},
		{name: "too many bytes", q: url.Values{"cmd": {strings.Repeat("x", MaxExecBytes+1)}}, wantErr: "at most 65536"},
		{name: "env without =", q: url.Values{"cmd": {"x"}, "env": {"A"}}, wantErr: `env: "A" is not KEY=VALUE`},
		{name: "env without a key", q: url.Values{"cmd": {"x"}, "env": {"=1"}}, wantErr: `env: "=1"`},
		{name: "bad tty", q: url.Values{"cmd": {"x"}, "tty": {"maybe"}}, wantErr: `tty: "maybe"`},
		{name: "bad size", q: url.Values{"cmd": {"x"}, "size": {"24by80"}}, wantErr: `size: "24by80"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseExecOptions(tc.q)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			// What the client sends is what the server reads.
			back, err := ParseExecOptions(got.values())
			if err != nil || fmt.Sprint(back) != fmt.Sprint(got) {
				t.Fatalf("round trip: %+v, %v", back, err)
			}
		})
	}
}

func TestParseResize(t *testing.T) {
	for _, tc := range []struct {
		in         string
		rows, cols uint16
		ok         bool
	}{
		{"24x80", 24, 80, true},
		{"0x0", 0, 0, true},
		{"65535x1", 65535, 1, true},
		{"65536x1", 0, 0, false},
		{"24", 0, 0, false},
		{"x80", 0, 0, false},
		{"-1x80", 0, 0, false},
	} {
		r, c, err := ParseResize([]byte(tc.in))
		if (err == nil) != tc.ok || r != tc.rows || c != tc.cols {
			t.Errorf("ParseResize(%q) = %d, %d, %v", tc.in, r, c, err)
		}
	}
}

// TestExecFullDuplex runs Client.Exec against a server that echoes stdin
// as stdout, over plain HTTP/1.1 (a loopback dev cluster) and HTTP/2 over
// TLS (a cluster's API): each line must come back before the next is sent
// (the two directions interleave), the headers must leave before any stdin
// does, and the exit code ends it.
func TestExecFullDuplex(t *testing.T) {
	for _, proto := range []int{1, 2} {
		t.Run(fmt.Sprintf("HTTP/%d", proto), func(t *testing.T) { testExecFullDuplex(t, proto) })
	}
}

func testExecFullDuplex(t *testing.T, proto int) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != proto {
			http.Error(w, "wrong protocol "+r.Proto, http.StatusBadRequest)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// HTTP/2 servers take the header for themselves.
		if proto == 1 && r.Header.Get("Expect") != ExpectContinue {
			http.Error(w, "no Expect: 100-continue", http.StatusBadRequest)
			return
		}
		// As the agent does: the first frame before the answer, or the
		// client, told no 100 Continue, would never send its body.
		in := NewExecReader(r.Body)
		if kind, p, err := in.Next(); err != nil || kind != FrameStdin || len(p) != 0 {
			http.Error(w, "want an empty stdin frame first", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		out := NewExecWriter(w, rc.Flush)
		lines := 0
		for {
			kind, p, err := in.Next()
			if err != nil {
				_ = out.Frame(FrameError, []byte(err.Error()))
				return
			}
			switch kind {
			case FrameStdin:
				if len(p) > 0 {
					lines++
					_ = out.Frame(FrameStdout, p)
					_ = out.Frame(FrameStderr, []byte("e"))
				}
			case FrameStdinClose:
				_ = out.Frame(FrameExit, []byte(strconv.Itoa(lines)))
				return
			}
		}
	}))
	client := func() *Client { srv.Start(); return NewClient(srv.URL) }
	if proto == 2 {
		client = func() *Client {
			srv.EnableHTTP2 = true
			srv.StartTLS()
			pool := x509.NewCertPool()
			pool.AddCert(srv.Certificate())
			return NewClient(srv.URL, WithTLS(&tls.Config{RootCAs: pool}))
		}
	}
	c := client()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	var stderr bytes.Buffer
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := c.Exec(ctx, "t1", ExecOptions{Cmd: []string{"cat"}},
			ExecIO{Stdin: stdinR, Stdout: stdoutW, Stderr: &stderr})
		done <- result{code, err}
	}()
	// Exec ending early (an error) must fail the test, not hang it.
	go func() {
		select {
		case res := <-done:
			stdinR.CloseWithError(fmt.Errorf("Exec ended early: %d, %v", res.code, res.err))
			stdoutW.CloseWithError(fmt.Errorf("Exec ended early: %d, %v", res.code, res.err))
			done <- res
		case <-ctx.Done():
		}
	}()
	buf := make([]byte, 16)
	for _, line := range []string{"one\n", "two\n", "three\n"} {
		if _, err := stdinW.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		n, err := stdoutR.Read(buf) // blocks until the echo came back
		if err != nil || string(buf[:n]) != line {
			t.Fatalf("echo of %q: %q, %v", line, buf[:n], err)
		}
	}
	stdinW.Close()
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }()
	res := <-done
	if res.err != nil || res.code != 3 {
		t.Fatalf("Exec = %d, %v; want exit code 3 (three lines)", res.code, res.err)
	}
	if stderr.String() != "eee" {
		t.Fatalf("stderr %q, want eee", stderr.String())
	}
}

// TestExecErrors: an error answer before the stream, an error frame and a
// stream cut before the exit code each come back as an error.
func TestExecErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler func(w http.ResponseWriter)
		want    string
		execErr bool
	}{
		{"error answer", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"task t1 not found"}`))
		}, "task t1 not found", false},
		{"error frame", func(w http.ResponseWriter) {
			_ = NewExecWriter(w, nil).Frame(FrameError, []byte("node n1: engine gone"))
		}, "node n1: engine gone", true},
		{"cut before the exit code", func(w http.ResponseWriter) {
			_ = NewExecWriter(w, nil).Frame(FrameStdout, []byte("partial"))
		}, "ended before the command's exit code", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.handler(w) }))
			defer srv.Close()
			_, err := NewClient(srv.URL).Exec(context.Background(), "t1", ExecOptions{Cmd: []string{"x"}},
				ExecIO{Stdout: io.Discard, Stderr: io.Discard})
			var ee *ExecError
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &ee) != tc.execErr {
				t.Fatalf("err %v (%T), want %q (ExecError: %v)", err, err, tc.want, tc.execErr)
			}
		})
	}
}
