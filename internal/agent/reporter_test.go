package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// scriptedSender hands each batch to the test and answers with the error
// the test sends back.
type scriptedSender struct {
	batches chan []types.TaskStatus
	answers chan error
}

func (s *scriptedSender) send(ctx context.Context, b []types.TaskStatus) error {
	s.batches <- b
	return <-s.answers
}

func startReporter(t *testing.T) (*reporter, *scriptedSender) {
	s := &scriptedSender{batches: make(chan []types.TaskStatus), answers: make(chan error)}
	timing := Timing{ReportWait: time.Millisecond, ReportMaxWait: 10 * time.Millisecond, RetryEvery: time.Millisecond}
	r := newReporter(s.send, timing, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r, s
}

func (s *scriptedSender) next(t *testing.T) []types.TaskStatus {
	t.Helper()
	select {
	case b := <-s.batches:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no batch sent")
		return nil
	}
}

func TestReporterLatestStateWins(t *testing.T) {
	r, s := startReporter(t)
	r.Add(types.TaskStatus{TaskID: "a", State: types.TaskStarting})
	r.Add(types.TaskStatus{TaskID: "b", State: types.TaskStarting})
	r.Add(types.TaskStatus{TaskID: "a", State: types.TaskRunning})
	b := s.next(t)
	if got := fmt.Sprint(states(b)); got != "[a:running b:starting]" {
		t.Errorf("batch = %s, want a running and b starting, in order", got)
	}
	s.answers <- nil
}

func TestReporterRetriesAFailedBatch(t *testing.T) {
	r, s := startReporter(t)
	r.Add(types.TaskStatus{TaskID: "a", State: types.TaskStarting})
	r.Add(types.TaskStatus{TaskID: "b", State: types.TaskStarting})
	first := s.next(t)
	// While the first send is out, a newer state of b arrives; the send
	// fails, and the retry carries a as it was and b's newer state.
	r.Add(types.TaskStatus{TaskID: "b", State: types.TaskRunning})
	s.answers <- errors.New("connection refused")
	retry := s.next(t)
	s.answers <- nil
	if got := fmt.Sprint(states(first)); got != "[a:starting b:starting]" {
		t.Errorf("first batch = %s", got)
	}
	if got := fmt.Sprint(states(retry)); got != "[b:running a:starting]" {
		t.Errorf("retried batch = %s, want b's newer state and a kept", got)
	}
}

func TestReporterDropsARefusedBatch(t *testing.T) {
	r, s := startReporter(t)
	r.Add(types.TaskStatus{TaskID: "a", State: types.TaskStarting})
	s.next(t)
	s.answers <- &api.Error{Status: http.StatusBadRequest, Message: "bad state"}
	r.Add(types.TaskStatus{TaskID: "b", State: types.TaskStarting})
	if got := fmt.Sprint(states(s.next(t))); got != "[b:starting]" {
		t.Errorf("next batch = %s, want only b (a was refused)", got)
	}
	s.answers <- nil
}

func states(b []types.TaskStatus) []string {
	out := make([]string, len(b))
	for i, ts := range b {
		out[i] = ts.TaskID + ":" + string(ts.State)
	}
	return out
}
