package api

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HeaderHeartbeat negotiates heartbeats on a stream (task logs): a client
// that sends it (any value) can read heartbeat frames; a server that
// answers with it (the interval, "5s") sends the body as frames, with a
// heartbeat whenever it has had nothing to send for that long. So a client
// tells a quiet stream (`logs -f` of a silent task) from a dead manager.
//
// A frame is a uvarint length and that many bytes of the stream; length 0
// is a heartbeat.
const HeaderHeartbeat = "X-Berth-Heartbeat"

// HeartbeatEvery is how often a server sends heartbeats on a quiet stream.
const HeartbeatEvery = 5 * time.Second

// FrameWriter writes a stream as frames, with Beat for heartbeats; flush
// (if not nil) runs after every frame. It is safe for concurrent use, so a
// ticker may beat while another goroutine writes.
type FrameWriter struct {
	mu    sync.Mutex
	w     io.Writer
	flush func() error
	last  time.Time
}

// NewFrameWriter writes frames to w.
func NewFrameWriter(w io.Writer, flush func() error) *FrameWriter {
	return &FrameWriter{w: w, flush: flush, last: time.Now()}
}

// Write sends p as one frame.
func (f *FrameWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var hdr [binary.MaxVarintLen64]byte
	if _, err := f.w.Write(hdr[:binary.PutUvarint(hdr[:], uint64(len(p)))]); err != nil {
		return 0, err
	}
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	f.last = time.Now()
	return n, f.flushLocked()
}

// Beat sends a heartbeat unless a frame went out within every.
func (f *FrameWriter) Beat(every time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.last) < every {
		return nil
	}
	if _, err := f.w.Write([]byte{0}); err != nil {
		return err
	}
	f.last = time.Now()
	return f.flushLocked()
}

func (f *FrameWriter) flushLocked() error {
	if f.flush == nil {
		return nil
	}
	return f.flush()
}

// maxFrame bounds one frame, so a corrupt length cannot make a reader
// allocate without limit.
const maxFrame = 1 << 20

// FrameReader reads the stream FrameWriter wrote, skipping heartbeats.
type FrameReader struct {
	r    *bufio.Reader
	left uint64 // bytes of the current frame not yet read
}

// NewFrameReader reads frames from r.
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{r: bufio.NewReader(r)} }

func (f *FrameReader) Read(p []byte) (int, error) {
	for f.left == 0 {
		n, err := binary.ReadUvarint(f.r)
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				return 0, fmt.Errorf("stream cut inside a frame header: %w", err)
			}
			return 0, err
		}
		if n > maxFrame {
			return 0, fmt.Errorf("stream frame of %d bytes is over the limit of %d", n, maxFrame)
		}
		f.left = n
	}
	if uint64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= uint64(n)
	if err == io.EOF && f.left > 0 {
		err = fmt.Errorf("stream cut inside a frame: %w", io.ErrUnexpectedEOF)
	}
	return n, err
}

// CancelOnClose returns body, which ends its request (cancel) when closed.
func CancelOnClose(body io.ReadCloser, cancel func()) io.ReadCloser {
	return &cancelBody{ReadCloser: body, cancel: cancel}
}

// cancelBody ends its request when closed.
type cancelBody struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// idleBody reads a framed stream and cuts it when nothing (not even a
// heartbeat) comes for idle.
type idleBody struct {
	frames *FrameReader
	body   io.ReadCloser
	cancel func()
	idle   time.Duration
	timer  *time.Timer
	cut    atomic.Bool
}

// ReadStream returns the body of a stream answer as the plain stream: a
// framed one (the server answered with HeaderHeartbeat) is decoded, and
// cut, with cancel, when it brings nothing for three heartbeats. Closing
// the result closes the body and calls cancel.
func ReadStream(resp *http.Response, cancel func()) io.ReadCloser {
	every, err := time.ParseDuration(resp.Header.Get(HeaderHeartbeat))
	if err != nil || every <= 0 {
		return &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	}
	return newIdleBody(resp.Body, cancel, 3*every)
}

// WriteStream starts a 200 answer to r that streams: framed, with a
// heartbeat every `every` the stream is quiet, when r asked for them
// (HeaderHeartbeat); plain otherwise. Every write is flushed. Call stop
// once the stream is done, before the handler returns.
func WriteStream(w http.ResponseWriter, r *http.Request, every time.Duration) (out io.Writer, stop func()) {
	rc := http.NewResponseController(w)
	if r.Header.Get(HeaderHeartbeat) == "" {
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush() // the client learns now that the stream is open
		return writerFunc(func(p []byte) (int, error) {
			n, err := w.Write(p)
			if err != nil {
				return n, err
			}
			return n, rc.Flush()
		}), func() {}
	}
	w.Header().Set(HeaderHeartbeat, every.String())
	w.WriteHeader(http.StatusOK)
	fw := NewFrameWriter(w, rc.Flush)
	_ = rc.Flush()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-r.Context().Done():
				return
			case <-t.C:
				if fw.Beat(every) != nil {
					return
				}
			}
		}
	})
	return fw, func() { close(done); wg.Wait() }
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func newIdleBody(body io.ReadCloser, cancel func(), idle time.Duration) *idleBody {
	b := &idleBody{body: body, cancel: cancel, idle: idle}
	b.timer = time.AfterFunc(idle, func() {
		b.cut.Store(true)
		cancel()
	})
	b.frames = NewFrameReader(readerFunc(func(p []byte) (int, error) {
		n, err := b.body.Read(p)
		if n > 0 {
			b.timer.Reset(b.idle)
		}
		return n, err
	}))
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.frames.Read(p)
	if err != nil && err != io.EOF && b.cut.Load() {
		err = fmt.Errorf("the manager sent nothing for %s, not even a heartbeat; the stream was cut: %w", b.idle, err)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.body.Close()
	b.cancel()
	return err
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
