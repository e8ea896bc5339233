// Package progress shows the progress of long runs on stderr: a bar redrawn
// in place on a terminal; in CI logs and pipes, where a bar is noise, a
// plain line every few seconds ("encrypting: 42% 1.0/2.4 GiB 800 MiB/s"),
// like `docker build --progress=plain`. A run shorter than that prints
// nothing there.
//
// Domain packages know nothing of this package: they take a plain
// func(n int64) callback, which [Bar.Add] satisfies.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Bar is a progress bar over a known total of units (bytes, files, steps).
// Its methods are safe for concurrent use; a nil or disabled Bar does nothing.
type Bar struct {
	w       io.Writer
	label   string
	total   int64
	bytes   bool
	done    atomic.Int64
	now     func() time.Time
	start   time.Time
	mu      sync.Mutex
	last    time.Time
	width   int
	enabled bool
	// plain writes whole lines every PlainEvery instead of redrawing.
	plain   bool
	printed bool
	closed  bool
}

// PlainEvery is how often a plain (non-terminal) progress line is written.
const PlainEvery = 5 * time.Second

// Options tune a Bar. The zero value is fine.
type Options struct {
	// Bytes formats counts as sizes (KiB, MiB, …) and shows a rate.
	Bytes bool
	// Force draws the bar even when w is not a terminal (tests).
	Force bool
	// Quiet draws nothing when w is not a terminal (no plain lines).
	Quiet bool
	// Now replaces the clock (tests).
	Now func() time.Time
}

// New returns a bar that draws on w only when w is a terminal (or
// opts.Force is set).
func New(w io.Writer, label string, total int64, opts Options) *Bar {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	b := &Bar{w: w, label: label, total: total, bytes: opts.Bytes, now: now, width: 30}
	b.enabled = opts.Force || IsTerminal(w)
	if !b.enabled && !opts.Quiet {
		b.enabled, b.plain = true, true
	}
	b.start = now()
	b.last = b.start
	return b
}

// Enabled reports whether the bar draws anything.
func (b *Bar) Enabled() bool { return b != nil && b.enabled }

// Add records n more units done and redraws at most ten times a second.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.done.Add(n)
	if !b.enabled {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	every := 100 * time.Millisecond
	if b.plain {
		every = PlainEvery
	}
	if t := b.now(); t.Sub(b.last) >= every {
		b.last = t
		b.draw()
	}
}

// Done draws the final state and ends the line.
func (b *Bar) Done() {
	if b == nil || !b.enabled {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	if b.plain {
		// A final line only when progress lines were written: a short run
		// stays silent in logs (the command prints its own summary).
		if b.printed {
			b.draw()
		}
		return
	}
	b.draw()
	fmt.Fprint(b.w, "\n")
}

// Writer wraps w so that every byte written through it counts.
func (b *Bar) Writer(w io.Writer) io.Writer { return countingWriter{w, b} }

// Reader wraps r so that every byte read through it counts.
func (b *Bar) Reader(r io.Reader) io.Reader { return countingReader{r, b} }

type countingWriter struct {
	w io.Writer
	b *Bar
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.b.Add(int64(n))
	return n, err
}

type countingReader struct {
	r io.Reader
	b *Bar
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.b.Add(int64(n))
	return n, err
}

// draw renders "\rlabel [=====>     ]  42% 1.0/2.4 GiB 800 MiB/s".
func (b *Bar) draw() {
	done := b.done.Load()
	var sb strings.Builder
	if b.plain {
		b.printed = true
		sb.WriteString("cvmkit: " + b.label + ":")
	} else {
		sb.WriteString("\r")
		sb.WriteString(b.label)
	}
	if b.total > 0 && b.plain {
		if done > b.total {
			done = b.total
		}
		fmt.Fprintf(&sb, " %3d%% ", 100*done/b.total)
	} else if b.total > 0 {
		if done > b.total {
			done = b.total
		}
		filled := int(int64(b.width) * done / b.total)
		sb.WriteString(" [")
		sb.WriteString(strings.Repeat("=", filled))
		if filled < b.width {
			sb.WriteString(">")
			sb.WriteString(strings.Repeat(" ", b.width-filled-1))
		}
		fmt.Fprintf(&sb, "] %3d%% ", 100*done/b.total)
	} else {
		sb.WriteString(" ")
	}
	if b.bytes {
		sb.WriteString(Size(done))
		if b.total > 0 {
			sb.WriteString("/" + Size(b.total))
		}
		if el := b.now().Sub(b.start).Seconds(); el > 0 {
			sb.WriteString(" " + Size(int64(float64(done)/el)) + "/s")
		}
	} else {
		fmt.Fprintf(&sb, "%d", done)
		if b.total > 0 {
			fmt.Fprintf(&sb, "/%d", b.total)
		}
	}
	if b.plain {
		sb.WriteString("\n")
	} else {
		sb.WriteString("\x1b[K") // clear the rest of the line
	}
	io.WriteString(b.w, sb.String())
}

// Size formats n bytes with a binary unit: "512 B", "1.5 KiB", "2.0 GiB".
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
