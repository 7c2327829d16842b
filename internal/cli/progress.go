package cli

import (
	"fmt"
	"io"
	"strings"
)

// progressDisplay shows a deploy converging. On a terminal it redraws one
// line per service in place; elsewhere (logs, CI) it prints a line only
// when a service's counts change, so the output stays readable as a file.
type progressDisplay struct {
	w     io.Writer
	tty   bool
	cols  int // terminal width; lines are cut to fit, or a wrapped line would break the redraw
	last  map[string]string
	drawn int    // lines drawn by the last redraw
	shown string // what the last redraw showed
}

func newProgressDisplay(w io.Writer, tty bool, cols int) *progressDisplay {
	return &progressDisplay{w: w, tty: tty, cols: cols, last: map[string]string{}}
}

func (d *progressDisplay) update(p progress) {
	width := 0
	for _, s := range p.Services {
		width = max(width, len(s.Name))
	}
	if d.tty {
		d.redraw(p, width)
		return
	}
	for _, s := range p.Services {
		line := s.summary()
		if d.last[s.Name] == line {
			continue
		}
		d.last[s.Name] = line
		fmt.Fprintf(d.w, "%-*s  %s\n", width, s.Name, line)
	}
}

func (d *progressDisplay) redraw(p progress, width int) {
	var b strings.Builder
	for _, s := range p.Services {
		line := fmt.Sprintf("%-*s  %s", width, s.Name, s.summary())
		if d.cols > 1 && len(line) >= d.cols {
			line = line[:d.cols-1]
		}
		fmt.Fprintf(&b, "\x1b[2K%s\n", line)
	}
	if b.String() == d.shown {
		return
	}
	if d.drawn > 0 {
		fmt.Fprintf(d.w, "\x1b[%dA", d.drawn) // back to the first line
	}
	io.WriteString(d.w, b.String())
	d.shown, d.drawn = b.String(), len(p.Services)
}
