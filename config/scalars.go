package config

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// scalar is implemented by the config's value types that parse themselves
// from a YAML scalar; the decoder attaches the position to their errors.
type scalar interface {
	setScalar(s string) error
}

// schemer is implemented by types that describe themselves in the schema.
type schemer interface {
	schema() map[string]any
}

// Path is a file or folder path. Relative paths are resolved against the
// config file's folder when the config is loaded.
type Path string

// Digest is a content digest, "sha256:" followed by 64 lowercase hex digits.
type Digest string

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (d *Digest) setScalar(s string) error {
	if !digestRE.MatchString(s) {
		return &hintError{
			msg:  fmt.Sprintf("malformed digest %q: want \"sha256:\" followed by 64 lowercase hex digits", s),
			hint: digestHint(s),
		}
	}
	*d = Digest(s)
	return nil
}

func digestHint(s string) string {
	hex := strings.TrimPrefix(s, "sha256:")
	switch {
	case !strings.HasPrefix(s, "sha256:") && regexp.MustCompile(`^[0-9a-fA-F]{64}$`).MatchString(s):
		return fmt.Sprintf("add the algorithm: digest: sha256:%s", strings.ToLower(s))
	case strings.ToLower(hex) != hex && len(hex) == 64:
		return "write the hex digits in lowercase"
	case strings.HasPrefix(s, "sha256:"):
		return fmt.Sprintf("it has %d characters after \"sha256:\", not 64; compute it with: sha256sum FILE", len(hex))
	default:
		return "compute it with: sha256sum FILE, and write it as sha256:<hex>"
	}
}

func (Digest) schema() map[string]any {
	return map[string]any{"type": "string", "pattern": digestRE.String()}
}

// Hex returns the digest's hex part.
func (d Digest) Hex() string { return strings.TrimPrefix(string(d), "sha256:") }

// FileMode is a permission mode written in octal, like "0644".
type FileMode uint32

func (m *FileMode) setScalar(s string) error {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 || len(s) < 3 {
		return &hintError{
			msg:  fmt.Sprintf("bad file mode %q: want octal permission bits", s),
			hint: `write octal permission bits, for example mode: "0644"`,
		}
	}
	*m = FileMode(v)
	return nil
}

func (FileMode) schema() map[string]any {
	return map[string]any{"type": "string", "pattern": "^[0-7]{3,4}$"}
}

// Size is a byte count written with an optional binary unit: 4096, 512M,
// 2G, 2GiB (K, M, G, T and their KiB … forms are powers of 1024).
type Size int64

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([KMGT]i?B?|B)?$`)

// ParseSize reads a size as cvmkit.yaml writes it (4096, 512M, 2G, 2GiB),
// for command-line flags that take the same form.
func ParseSize(s string) (int64, error) {
	var z Size
	if err := z.setScalar(s); err != nil {
		return 0, err
	}
	return int64(z), nil
}

func (z *Size) setScalar(s string) error {
	m := sizeRE.FindStringSubmatch(s)
	bad := &hintError{
		msg:  fmt.Sprintf("bad size %q", s),
		hint: "write a byte count with an optional unit K, M, G or T (powers of 1024), for example 2G or 512MiB",
	}
	if m == nil {
		return bad
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return bad
	}
	shift := map[byte]uint{'K': 10, 'M': 20, 'G': 30, 'T': 40}
	if m[2] != "" && m[2] != "B" {
		sh := shift[m[2][0]]
		if n > math.MaxInt64>>sh {
			return bad
		}
		n <<= sh
	}
	*z = Size(n)
	return nil
}

func (Size) schema() map[string]any {
	return map[string]any{"oneOf": []any{
		map[string]any{"type": "integer", "minimum": 0},
		map[string]any{"type": "string", "pattern": sizeRE.String()},
	}}
}

// Uint64 is an unsigned integer that may be written in hex (0x30000),
// octal (0o7), binary (0b1) or decimal.
type Uint64 uint64

func (u *Uint64) setScalar(s string) error {
	v, err := strconv.ParseUint(strings.ReplaceAll(s, "_", ""), 0, 64)
	if err != nil {
		return &hintError{
			msg:  fmt.Sprintf("bad unsigned integer %q", s),
			hint: "write it in decimal or with 0x for hex, for example 0x30000",
		}
	}
	*u = Uint64(v)
	return nil
}

func (Uint64) schema() map[string]any {
	return map[string]any{"oneOf": []any{
		map[string]any{"type": "integer", "minimum": 0},
		map[string]any{"type": "string", "pattern": "^(0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|[0-9_]+)$"},
	}}
}

// HexBytes is a byte string written in hex (with or without 0x).
type HexBytes []byte

var hexRE = regexp.MustCompile(`^(0x)?([0-9a-fA-F]{2})*$`)

func (h *HexBytes) setScalar(s string) error {
	if !hexRE.MatchString(s) {
		return &hintError{
			msg:  fmt.Sprintf("bad hex string %q", s),
			hint: "write an even number of hex digits, for example 00112233445566778899aabbccddeeff",
		}
	}
	s = strings.TrimPrefix(s, "0x")
	b := make([]byte, len(s)/2)
	for i := range b {
		v, _ := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		b[i] = byte(v)
	}
	*h = b
	return nil
}

func (HexBytes) schema() map[string]any {
	return map[string]any{"type": "string", "pattern": hexRE.String()}
}

// Time is an RFC 3339 timestamp.
type Time struct{ time.Time }

func (t *Time) setScalar(s string) error {
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return &hintError{
			msg:  fmt.Sprintf("bad time %q", s),
			hint: "write an RFC 3339 time, for example 2025-01-01T00:00:00Z",
		}
	}
	t.Time = v
	return nil
}

func (Time) schema() map[string]any {
	return map[string]any{"type": "string", "format": "date-time"}
}

// enum is implemented by string types with a fixed set of values.
type enum interface {
	values() []string
}

// Compression is the initrd compression.
type Compression string

func (Compression) values() []string { return []string{"zstd", "gzip"} }

// VerityPlacement says where the dm-verity hash tree is written.
type VerityPlacement string

func (VerityPlacement) values() []string { return []string{"appended", "separate"} }

// SNPMode is the AMD SEV launch mode.
type SNPMode string

func (SNPMode) values() []string { return []string{"snp", "seves", "sev", "snp:svsm"} }

// VMM is the virtual machine monitor, which decides VMSA details.
type VMM string

func (VMM) values() []string { return []string{"qemu", "ec2", "gce"} }

// PageOrder is the order a TDX host adds and measures firmware pages.
type PageOrder string

func (PageOrder) values() []string { return []string{"single-pass", "two-pass"} }

// SBOMFormat is an SBOM output format.
type SBOMFormat string

func (SBOMFormat) values() []string { return []string{"spdx-json", "cyclonedx-json"} }

// Authority is a key-release authority whose policy is written.
type Authority string

func (Authority) values() []string {
	return []string{"trustee", "azure-skr", "sev-check", "tdx-check", "ita"}
}

// hintError is a value error with a suggestion for the user.
type hintError struct{ msg, hint string }

func (e *hintError) Error() string { return e.msg }
