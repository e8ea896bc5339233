package progress

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestNotATerminal: in a log, a short run prints nothing; a long one a
// plain line every PlainEvery and a final one.
func TestNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "encrypting", 100, Options{Bytes: true})
	io.Copy(b.Writer(io.Discard), strings.NewReader(strings.Repeat("x", 100)))
	b.Done()
	if buf.Len() != 0 {
		t.Fatalf("a short run drew %q in a log", buf.String())
	}
	c := &clock{time.Unix(1000, 0)}
	b = New(&buf, "encrypting", 4<<30, Options{Bytes: true, Now: c.now})
	for i := 0; i < 4; i++ {
		c.t = c.t.Add(2 * time.Second)
		b.Add(1 << 30)
	}
	b.Done()
	want := "cvmkit: encrypting:  75% 3.0 GiB/4.0 GiB 512.0 MiB/s\ncvmkit: encrypting: 100% 4.0 GiB/4.0 GiB 512.0 MiB/s\n"
	if buf.String() != want {
		t.Fatalf("plain lines %q, want %q", buf.String(), want)
	}
	if q := New(&buf, "x", 1, Options{Quiet: true}); q.Enabled() {
		t.Fatal("Quiet drew in a log")
	}
}

func TestForcedBar(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{time.Unix(1000, 0)}
	b := New(&buf, "hashing", 4<<20, Options{Bytes: true, Force: true, Now: c.now})
	c.t = c.t.Add(time.Second)
	b.Add(1 << 20)
	c.t = c.t.Add(10 * time.Millisecond)
	b.Add(1 << 20) // throttled: within 100 ms of the last draw
	c.t = c.t.Add(time.Second)
	b.Add(2 << 20)
	b.Done()
	out := buf.String()
	frames := strings.Split(strings.TrimSuffix(out, "\n"), "\r")[1:]
	if len(frames) != 3 {
		t.Fatalf("want 3 frames (one throttled), got %d: %q", len(frames), out)
	}
	if !strings.Contains(frames[0], " 25% 1.0 MiB/4.0 MiB 1.0 MiB/s") {
		t.Errorf("first frame %q", frames[0])
	}
	if !strings.Contains(frames[2], "[==============================] 100% 4.0 MiB/4.0 MiB") {
		t.Errorf("last frame %q", frames[2])
	}
	if !strings.HasSuffix(out, "\n") {
		t.Error("Done must end the line")
	}
}

func TestNilBar(t *testing.T) {
	var b *Bar
	b.Add(1)
	b.Done()
	if b.Enabled() {
		t.Fatal("nil bar enabled")
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
