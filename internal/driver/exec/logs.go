package execdriver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/driver"
)

// followPoll is how often a followed log is checked for new output.
const followPoll = 200 * time.Millisecond

// Logs writes the task's output to w: the last o.Tail lines (all when 0),
// then, with o.Follow, new output until ctx is done or the task has exited
// and its output is drained. Lines carry no timestamps (see the package doc).
func (d *Driver) Logs(ctx context.Context, taskID string, o driver.LogOptions, w io.Writer) error {
	t, err := d.task(taskID)
	if err != nil {
		return fmt.Errorf("logs of task %s: %w", taskID, err)
	}
	f, err := os.Open(filepath.Join(t.dir, logFile))
	if err != nil {
		return fmt.Errorf("logs of task %s: %w", taskID, err)
	}
	defer f.Close()
	if o.Tail > 0 {
		if err := seekTail(f, o.Tail); err != nil {
			return fmt.Errorf("logs of task %s: %w", taskID, err)
		}
	}
	for {
		if _, err := io.Copy(w, f); err != nil {
			return fmt.Errorf("logs of task %s: %w", taskID, err)
		}
		if !o.Follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.done:
			_, err := io.Copy(w, f) // what was written just before exit
			return err
		case <-time.After(followPoll):
		}
	}
}

// seekTail positions f at the start of its last n lines. It reads the file
// once, keeping the start offsets of the last n lines in a ring.
func seekTail(f *os.File, n int) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	ring := make([]int64, n)
	lines := 0
	var pos int64
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			ring[lines%n] = pos
			lines++
			pos += int64(len(line))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	start := int64(0)
	if lines > n {
		start = ring[lines%n] // the oldest of the last n
	}
	_, err := f.Seek(start, io.SeekStart)
	return err
}
