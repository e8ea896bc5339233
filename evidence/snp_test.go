package evidence

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/refvalues"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
)

// realSNP is the real SEV-SNP report and VCEK go-sev-guest publishes as
// test data (verify/testdata, Apache-2.0; see testdata/README.md), read in
// place from the module cache: a Milan VM's version 2 report launched
// without an ID block.
func realSNP(t testing.TB) (report, vcek []byte) {
	t.Helper()
	dir := filepath.Join(testenv.ModuleDir(t, "github.com/google/go-sev-guest"), "verify", "testdata")
	var err error
	if report, err = os.ReadFile(filepath.Join(dir, "attestation.bin")); err != nil {
		t.Fatal(err)
	}
	if vcek, err = os.ReadFile(filepath.Join(dir, "vcek.testcer")); err != nil {
		t.Fatal(err)
	}
	return report, vcek
}

// realSNPMeasurement is the MEASUREMENT of that report.
const realSNPMeasurement = "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"

var verifyAt = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// TestVerifyRealSNP: the real report verifies with its VCEK against the
// pinned AMD Milan roots, offline; one changed signature byte, one changed
// report byte, another time outside the VCEK's validity or no VCEK is
// refused as not authentic.
func TestVerifyRealSNP(t *testing.T) {
	raw, vcek := realSNP(t)
	att, err := ParseSNPReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySNP(context.Background(), att, SNPOptions{VCEK: vcek, At: verifyAt}); err != nil {
		t.Fatalf("real report: %v", err)
	}
	if got := hex.EncodeToString(att.Report.Measurement); got != realSNPMeasurement {
		t.Fatalf("measurement %s", got)
	}
	for name, c := range map[string]struct {
		mutate func([]byte)
		o      SNPOptions
		want   string
	}{
		"signature byte": {func(b []byte) { b[0x2a0] ^= 1 }, SNPOptions{VCEK: vcek, At: verifyAt}, "signature"},
		"measurement":    {func(b []byte) { b[0x90] ^= 1 }, SNPOptions{VCEK: vcek, At: verifyAt}, "signature"},
		"expired":        {nil, SNPOptions{VCEK: vcek, At: time.Date(2060, 1, 1, 0, 0, 0, 0, time.UTC)}, "expired"},
		"no VCEK":        {nil, SNPOptions{At: verifyAt}, "no VCEK"},
	} {
		b := append([]byte(nil), raw...)
		if c.mutate != nil {
			c.mutate(b)
		}
		att, err := ParseSNPReport(b)
		if err != nil {
			t.Fatal(err)
		}
		err = VerifySNP(context.Background(), att, c.o)
		if !errors.Is(err, ErrNotAuthentic) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want not authentic (%q)", name, err, c.want)
		}
	}
	if _, err := ParseSNPReport([]byte("not a report")); err == nil {
		t.Error("garbage parsed as a report")
	}
}

func TestMatchSNP(t *testing.T) {
	m, _ := hex.DecodeString(realSNPMeasurement)
	other := append([]byte(nil), m...)
	other[0] ^= 0xff
	policy, wrongPolicy := uint64(0x30000), uint64(0x70000)
	r := &spb.Report{Measurement: m, Policy: 0x30000, HostData: make([]byte, 32), ReportData: make([]byte, 64), ReportedTcb: 0x44_05_0000_0000_00_02}
	refs := []SNPReference{{Name: "a/other", Measurement: other}, {Name: "a/this", Measurement: m, Policy: &policy, HostData: make([]byte, 32)}}

	if got := MatchSNP(r, refs, nil); !got.OK() || got.Configuration != "a/this" {
		t.Fatalf("matching report: %+v", got)
	}
	if got := MatchSNP(r, refs[:1], nil); got.OK() || got.Configuration != "" || !strings.Contains(got.Fields[0].Want, "a/other") {
		t.Fatalf("no configuration: %+v", got)
	}
	refs[1].Policy = &wrongPolicy
	got := MatchSNP(r, refs, nil)
	if got.OK() || got.PolicyOnly() || got.Fields[1].Name != "POLICY" || got.Fields[1].OK {
		t.Fatalf("other policy: %+v", got)
	}
	refs[1].Policy = &policy
	refs[1].MinimumTCB = &TCB{Bootloader: 3, SNP: 5, Microcode: 0x44}
	got = MatchSNP(r, refs, nil)
	if got.OK() || !got.PolicyOnly() {
		t.Fatalf("old bootloader: %+v", got)
	}
	refs[1].MinimumTCB = &TCB{Bootloader: 2, SNP: 5, Microcode: 0x44}
	if got := MatchSNP(r, refs, []byte{1, 2}); got.OK() {
		t.Fatalf("nonce: %+v", got)
	}
	r.ReportData[0], r.ReportData[1] = 1, 2
	if got := MatchSNP(r, refs, []byte{1, 2}); !got.OK() {
		t.Fatalf("nonce and minimum TCB met: %+v", got)
	}
	// A report a VMPL-3 component asked for carries the same measurement:
	// it does not speak for the release's OS at VMPL 0.
	vmpl0 := uint32(0)
	refs[1].VMPL = &vmpl0
	r.Vmpl = 3
	if got := MatchSNP(r, refs, nil); got.OK() || got.PolicyOnly() || !hasFailing(got, "VMPL") {
		t.Fatalf("VMPL 3: %+v", got)
	}
	r.Vmpl = 0
	// DEBUG (policy bit 19) is refused even when the release fixes no
	// policy.
	refs[1].Policy = nil
	r.Policy = 0xb0000
	if got := MatchSNP(r, refs, nil); got.OK() || !got.PolicyOnly() || !hasFailing(got, "POLICY.DEBUG") {
		t.Fatalf("debug without a release policy: %+v", got)
	}
}

func hasFailing(m *Match, name string) bool {
	for _, f := range m.Fields {
		if f.Name == name && !f.OK {
			return true
		}
	}
	return false
}

// TestSNPReferencesPinTheIDBlock: check snp compares what the release's
// policies pin (refvalues.SNP.Pins): with an ID block, FAMILY_ID, IMAGE_ID,
// GUEST_SVN (at least the block's) and the key digests.
func TestSNPReferencesPinTheIDBlock(t *testing.T) {
	block := make([]byte, 0x60)
	copy(block[0x30:], bytes.Repeat([]byte{0xf1}, 16))
	copy(block[0x40:], bytes.Repeat([]byte{0x1d}, 16))
	block[0x54] = 3
	m := bytes.Repeat([]byte{0x11}, 48)
	rel := &refvalues.Release{SNP: map[string]*refvalues.SNP{"snp-q": {Policy: "0x30000", Measurements: []refvalues.SNPEntry{{Name: "e", Digest: hex.EncodeToString(m),
		IDBlock: base64.StdEncoding.EncodeToString(block), IDKeyDigest: strings.Repeat("22", 48)}}}}}
	refs, err := SNPReferences(rel)
	if err != nil {
		t.Fatal(err)
	}
	r := &spb.Report{Measurement: m, Policy: 0x30000, FamilyId: bytes.Repeat([]byte{0xf1}, 16), ImageId: bytes.Repeat([]byte{0x1d}, 16), GuestSvn: 4,
		IdKeyDigest: bytes.Repeat([]byte{0x22}, 48), AuthorKeyDigest: make([]byte, 48), ReportData: make([]byte, 64)}
	ok := func(r *spb.Report) map[string]bool {
		got := map[string]bool{}
		for _, f := range MatchSNP(r, refs, nil).Fields {
			got[f.Name] = f.OK
		}
		return got
	}
	if got := ok(r); !got["FAMILY_ID"] || !got["IMAGE_ID"] || !got["GUEST_SVN"] || !got["ID_KEY_DIGEST"] {
		t.Fatalf("a matching report: %v", got)
	}
	r.GuestSvn, r.FamilyId = 2, make([]byte, 16)
	if got := ok(r); got["FAMILY_ID"] || got["GUEST_SVN"] {
		t.Fatalf("another family and an older SVN: %v", got)
	}
}
