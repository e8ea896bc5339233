// Package qemu holds what QEMU itself does to a direct kernel boot's
// inputs before any firmware sees them, shared by the SEV-SNP and TDX
// measurements.
package qemu

import (
	"errors"
	"fmt"
	"strings"
)

// Video modes QEMU writes for the named vga= values (the Linux boot
// protocol's vid_mode; arch/x86/include/uapi/asm/boot.h NORMAL_VGA,
// EXTENDED_VGA, ASK_VGA).
const (
	VidModeNormal uint16 = 0xffff
	VidModeExt    uint16 = 0xfffe
	VidModeAsk    uint16 = 0xfffd
)

// VidModeOffset is where the video mode sits in the bzImage setup header
// (Documentation/arch/x86/boot.rst: vid_mode at 0x1FA).
const VidModeOffset = 0x1fa

// ErrInvalidVGA is QEMU's refusal of a vga= value it cannot parse.
var ErrInvalidVGA = errors.New("invalid 'vga=' kernel parameter")

// VidMode is what QEMU's x86_load_linux (hw/i386/x86-common.c, unchanged
// since QEMU 5.0) writes to the setup header's vid_mode for a command
// line: it finds the first "vga=" anywhere in it — also inside another
// word such as "novga=" — and reads what follows as "normal", "ext" or
// "ask" (as prefixes: "vga=extra" is ext) or as a number for
// qemu_strtoui(…, 0): optional leading white space and sign, 0x/0X for
// hex, 0 for octal, at most UINT_MAX in magnitude (a negative number wraps
// as strtoul's does), followed by the end of the line or a space. QEMU
// stores the low 16 bits. Anything else makes QEMU exit before the guest
// starts: ErrInvalidVGA. ok is false when there is no "vga=".
func VidMode(cmdline string) (mode uint16, ok bool, err error) {
	i := strings.Index(cmdline, "vga=")
	if i < 0 {
		return 0, false, nil
	}
	v := cmdline[i+len("vga="):]
	switch {
	case strings.HasPrefix(v, "normal"):
		return VidModeNormal, true, nil
	case strings.HasPrefix(v, "ext"):
		return VidModeExt, true, nil
	case strings.HasPrefix(v, "ask"):
		return VidModeAsk, true, nil
	}
	n, rest, err := strtoui(v)
	if err != nil || (rest != "" && rest[0] != ' ') {
		word, _, _ := strings.Cut(cmdline[i:], " ")
		return 0, true, fmt.Errorf("%w %q: QEMU exits on it; use normal, ext, ask or a number (0x317, 791)", ErrInvalidVGA, word)
	}
	return uint16(n), true, nil
}

// strtoui is qemu_strtoui(s, &end, 0, &v) (util/cutils.c) over glibc's
// strtoull: it returns the value and the unparsed rest, or an error where
// QEMU's returns one (no digits, or out of the unsigned int range).
func strtoui(s string) (uint32, string, error) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := 10
	switch {
	case i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && i+2 < len(s) && digit(s[i+2], 16) >= 0:
		base, i = 16, i+2
	case i < len(s) && s[i] == '0':
		base = 8
	}
	start := i
	var mag uint64
	overflow := false
	for ; i < len(s); i++ {
		d := digit(s[i], base)
		if d < 0 {
			break
		}
		if mag > (1<<64-1-uint64(d))/uint64(base) {
			overflow = true
		}
		mag = mag*uint64(base) + uint64(d)
	}
	if i == start {
		return 0, s, errors.New("no digits")
	}
	// glibc: out of uint64 range is ERANGE; qemu_strtoui then refuses a
	// magnitude above UINT_MAX, and wraps a negative one as unsigned int.
	if overflow || mag > 1<<32-1 {
		return 0, s[i:], errors.New("out of range")
	}
	v := uint32(mag)
	if neg {
		v = -v
	}
	return v, s[i:], nil
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

func digit(c byte, base int) int {
	var d int
	switch {
	case c >= '0' && c <= '9':
		d = int(c - '0')
	case c >= 'a' && c <= 'z':
		d = int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		d = int(c-'A') + 10
	default:
		return -1
	}
	if d >= base {
		return -1
	}
	return d
}

// CheckCmdline refuses a command line QEMU cannot pass on as given: one
// with a NUL byte (QEMU keeps it as a C string, so the firmware and the
// measurements would see it cut short) or an invalid vga= value.
func CheckCmdline(cmdline string) error {
	if strings.IndexByte(cmdline, 0) >= 0 {
		return errors.New("the kernel command line contains a NUL byte: QEMU would cut it there")
	}
	_, _, err := VidMode(cmdline)
	return err
}
