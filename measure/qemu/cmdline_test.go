package qemu

import (
	"errors"
	"strings"
	"testing"
)

// TestVidMode follows QEMU's x86_load_linux and qemu_strtoui case by case;
// measure/tdx's TestQEMURefusesLikeVidMode checks the same split against
// the real qemu-system-x86_64.
func TestVidMode(t *testing.T) {
	for _, c := range []struct {
		cmdline string
		mode    uint16
		ok      bool
		refused bool
	}{
		{"console=ttyS0", 0, false, false},
		{"", 0, false, false},
		{"vga=normal", 0xffff, true, false},
		{"vga=normalize", 0xffff, true, false}, // strncmp prefix
		{"vga=ext", 0xfffe, true, false},
		{"vga=extra", 0xfffe, true, false},
		{"vga=ask", 0xfffd, true, false},
		{"vga=0x317", 0x317, true, false},
		{"vga=0X317 quiet", 0x317, true, false},
		{"vga=791", 791, true, false},
		{"vga=0317", 0o317, true, false},
		{"vga=0", 0, true, false},
		{"vga=+5", 5, true, false},
		{"vga=-1", 0xffff, true, false},
		{"vga=-0x10", 0xfff0, true, false},
		{"vga= 12", 12, true, false}, // strtoull skips leading white space
		{"vga=4294967295", 0xffff, true, false},
		{"vga=0x12345", 0x2345, true, false}, // QEMU stores the low 16 bits
		{"novga=0x10", 0x10, true, false},    // strstr finds it inside a word
		{"vga=ask vga=bogus", 0xfffd, true, false},
		{"vga=", 0, true, true},
		{"vga=bogus", 0, true, true},
		{"vga=0x", 0, true, true},
		{"vga=08", 0, true, true},
		{"vga=4294967296", 0, true, true},
		{"vga=-4294967296", 0, true, true},
		{"vga=99999999999999999999999", 0, true, true},
		{"vga=791,keep", 0, true, true},
		{"vga=12\tquiet", 0, true, true},
		{"vga=-", 0, true, true},
	} {
		mode, ok, err := VidMode(c.cmdline)
		if ok != c.ok || (err != nil) != c.refused || (!c.refused && mode != c.mode) {
			t.Errorf("VidMode(%q) = %#x, %v, %v; want %#x, %v, refused %v", c.cmdline, mode, ok, err, c.mode, c.ok, c.refused)
		}
		if err != nil && (!errors.Is(err, ErrInvalidVGA) || !strings.Contains(err.Error(), "QEMU exits")) {
			t.Errorf("VidMode(%q): error %q does not say why", c.cmdline, err)
		}
	}
	if err := CheckCmdline("a\x00b"); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("a NUL byte: %v", err)
	}
}

// FuzzVidMode: never panics; an accepted number parses back.
func FuzzVidMode(f *testing.F) {
	for _, s := range []string{"vga=0x317", "vga=-1", "novga= +0", "vga=0777777777777777777777"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mode, ok, err := VidMode(s)
		if !ok && (err != nil || mode != 0) {
			t.Fatalf("%q: no vga= but %#x, %v", s, mode, err)
		}
	})
}
