package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
)

// prefixColors are the ANSI colors of log prefixes on a terminal.
var prefixColors = []string{"36", "33", "32", "35", "34", "91", "92", "93", "94", "95", "96"}

// prefixWriter writes whole lines from many streams to one writer, each
// prefixed with its source ("web-1  | "), padded to the longest prefix.
type prefixWriter struct {
	w     io.Writer
	color bool
	bare  bool // no prefix at all (logs --no-log-prefix)

	mu     sync.Mutex
	width  int
	colors map[string]string
}

func newPrefixWriter(w io.Writer, color bool) *prefixWriter {
	return &prefixWriter{w: w, color: color, colors: map[string]string{}}
}

// grow makes room for prefix and gives it a color.
func (p *prefixWriter) grow(prefix string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.width = max(p.width, len(prefix))
	if _, ok := p.colors[prefix]; !ok {
		p.colors[prefix] = prefixColors[len(p.colors)%len(prefixColors)]
	}
}

// copyLines prefixes every line of r until it ends.
func (p *prefixWriter) copyLines(prefix string, r io.Reader) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if line[len(line)-1] != '\n' {
				line += "\n"
			}
			p.writeLine(prefix, line)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (p *prefixWriter) writeLine(prefix, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bare {
		fmt.Fprint(p.w, line)
		return
	}
	pad := fmt.Sprintf("%-*s  |", p.width, prefix)
	if p.color {
		pad = "\x1b[" + p.colors[prefix] + "m" + pad + "\x1b[0m"
	}
	fmt.Fprintf(p.w, "%s %s", pad, line)
}
