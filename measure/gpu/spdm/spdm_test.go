package spdm

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cvmkit/cvmkit/internal/testenv"
)

func reports(tb testing.TB) [][]byte {
	dir := filepath.Join(testenv.SharedDir(tb), "fixtures", "gpu")
	var out [][]byte
	for _, p := range []string{"nvtrust/reports/*.hex", "attestation-sdk/reports/*Report*.txt", "trustee/hopper_coco_report1.txt"} {
		files, _ := filepath.Glob(filepath.Join(dir, p))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				if r, err := DecodeReport(b); err == nil {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// TestParseReports: every published report parses, its signature is the
// 96-byte r‖s, and the signed transcript, the signature and the trailing
// padding account for every byte; a truncated report is malformed.
func TestParseReports(t *testing.T) {
	testenv.SharedFile(t, "fixtures/gpu/trustee/hopper_coco_report1.txt")
	rs := reports(t)
	for i, b := range rs {
		r, err := ParseReport(b)
		if err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
		if len(r.Signature) != P384SignatureLen || len(r.Signed)+len(r.Signature)+r.Trailing != len(b) {
			t.Errorf("report %d: signature %d, signed %d, trailing %d of %d bytes", i, len(r.Signature), len(r.Signed), r.Trailing, len(b))
		}
		if !IsVBIOSVersion(r.VBIOSVersion()) {
			t.Errorf("report %d: VBIOS version %q", i, r.VBIOSVersion())
		}
		if _, err := ParseReport(b[:RequestLen+10]); !errors.Is(err, ErrMalformed) {
			t.Errorf("report %d truncated: %v", i, err)
		}
	}
}

// FuzzParseReport drives the report parser and its accessors on their own.
func FuzzParseReport(f *testing.F) {
	for _, r := range reports(f) {
		f.Add(r)
	}
	f.Add([]byte{0x11, 0xe0, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		if err != nil {
			return
		}
		if len(r.Signature) != P384SignatureLen || len(r.Signed)+len(r.Signature)+r.Trailing != len(data) {
			t.Fatalf("signature %d, signed %d, trailing %d of %d bytes", len(r.Signature), len(r.Signed), r.Trailing, len(data))
		}
		_ = r.DriverVersion()
		_ = r.VBIOSVersion()
		_ = r.VBIOSRIMID()
		_ = r.MeasurementCounts()
		_, _ = r.NVDEC0Status()
	})
}
