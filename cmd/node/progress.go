package main

import (
	"fmt"
	"io"
	"time"
)

// progress reports bytes read on a terminal, twice a second.
type progress struct {
	r     io.Reader
	e     *env
	total int64
	done  int64
	what  string
	last  time.Time
	on    bool
}

func newProgress(e *env, r io.Reader, total int64, what string) io.Reader {
	return &progress{r: r, e: e, total: total, what: what, on: isTerminal(e.stderr)}
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.on && (time.Since(p.last) > 500*time.Millisecond || err == io.EOF) {
		p.last = time.Now()
		if p.total > 0 {
			fmt.Fprintf(p.e.stderr, "\r%s %s / %s (%d%%)", p.what, bytesize(p.done), bytesize(p.total), min(100, 100*p.done/p.total))
		} else {
			fmt.Fprintf(p.e.stderr, "\r%s %s", p.what, bytesize(p.done))
		}
		if err == io.EOF {
			fmt.Fprintln(p.e.stderr)
		}
	}
	return n, err
}

func bytesize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
