package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/internal/testenv"
	"github.com/cvmkit/cvmkit/measure/tdx"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/cvmkit/cvmkit/verify"
	sevabi "github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	sevtest "github.com/google/go-sev-guest/testing"
	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	tdxtest "github.com/google/go-tdx-guest/testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &stdout, &stderr, func(string) (string, bool) { return "", false })
	return code, stdout.String(), stderr.String()
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCheckSNPRealReport runs 'cvmkit check snp' on the real report and
// VCEK go-sev-guest publishes (verify/testdata): against a release whose
// reference values hold its measurement and policy it is accepted; against
// one built for another launch the differing field is named (exit 5); with
// one signature byte changed it is refused as not authentic (exit 4).
func TestCheckSNPRealReport(t *testing.T) {
	gsg := filepath.Join(testenv.ModuleDir(t, "github.com/google/go-sev-guest"), "verify", "testdata")
	report, vcek := filepath.Join(gsg, "attestation.bin"), filepath.Join(gsg, "vcek.testcer")
	const m = "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"
	dir := t.TempDir()
	this := filepath.Join(dir, "this")
	writeJSONFile(t, filepath.Join(this, "measurements", "snp-gce.json"), refvalues.SNP{Mode: "snp", Policy: "0xb0000", Measurements: []refvalues.SNPEntry{
		{Name: "gce-1vcpu", Digest: strings.Repeat("00", 48)}, {Name: "gce-2vcpu", Digest: m}}})
	writeJSONFile(t, filepath.Join(this, "image", "image.lock.json"), map[string]string{"release": "demo@1.0.0"})

	// The report's guest policy 0xb0000 has the DEBUG bit (19) set: it is
	// authentic and matches by measurement, but a debug VM never passes
	// (exit 6, a policy refusal).
	code, out, errOut := runCLI(t, "check", "snp", this, "--report", report, "--vcek", vcek, "--verify-at", "2024-01-01")
	if code != outcome.Policy.Value || !strings.Contains(out, "matches snp-gce.gce-2vcpu by measurement, but POLICY.DEBUG differ") ||
		!strings.Contains(out, "chain to the AMD roots pinned in cvmkit") || !strings.Contains(out, "VMPL               ok") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}

	// Another release: the quickstart's kind of values.
	other := filepath.Join(dir, "other")
	writeJSONFile(t, filepath.Join(other, "measurements", "snp-qemu.json"), refvalues.SNP{Mode: "snp", Policy: "0x30000", Measurements: []refvalues.SNPEntry{{Name: "qemu-EPYC-Milan-2vcpu", Digest: strings.Repeat("11", 48)}}})
	code, out, _ = runCLI(t, "check", "snp", other, "--report", report, "--vcek", vcek, "--verify-at", "2024-01-01")
	if code != outcome.Mismatch.Value || !strings.Contains(out, "MEASUREMENT        DIFFERS") || !strings.Contains(out, "no configuration of the release has this measurement") {
		t.Fatalf("other release: exit %d\n%s", code, out)
	}
	// The right measurement, another policy: POLICY named.
	writeJSONFile(t, filepath.Join(other, "measurements", "snp-qemu.json"), refvalues.SNP{Mode: "snp", Policy: "0x30000", Measurements: []refvalues.SNPEntry{{Name: "x", Digest: m}}})
	code, out, _ = runCLI(t, "check", "snp", other, "--report", report, "--vcek", vcek, "--verify-at", "2024-01-01", "--json")
	var res verify.EvidenceCheck
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != outcome.Mismatch.Value || res.Match.Fields[1].Name != "POLICY" || res.Match.Fields[1].OK {
		t.Fatalf("other policy: exit %d %v\n%s", code, err, out)
	}

	raw, _ := os.ReadFile(report)
	raw[0x2a0+5] ^= 1
	tampered := filepath.Join(dir, "tampered.bin")
	os.WriteFile(tampered, raw, 0o644)
	code, out, errOut = runCLI(t, "check", "snp", this, "--report", tampered, "--vcek", vcek, "--verify-at", "2024-01-01")
	if code != outcome.Signature.Value || !strings.Contains(out, "not authentic") {
		t.Fatalf("changed signature byte: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "check", "snp", this, "--report", report, "--verify-at", "2024-01-01")
	if code != outcome.Signature.Value || !strings.Contains(errOut, "no VCEK") {
		t.Fatalf("no VCEK: exit %d %s", code, errOut)
	}
}

// TestCheckTDXRealQuote: go-tdx-guest's production quote (Sapphire Rapids)
// verifies offline against the pinned Intel root; a release holding its
// MRTD and RTMRs accepts it, one with another RTMR1 names RTMR1, one byte of
// the signature refuses it; an event log that does not replay to the
// quote's RTMRs is named as not this TD's.
func TestCheckTDXRealQuote(t *testing.T) {
	quote := filepath.Join(testenv.ModuleDir(t, "github.com/google/go-tdx-guest"), "testing", "testdata", "tdx_prod_quote_SPR_E4.dat")
	raw, err := os.ReadFile(quote)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	doc := tdxFromQuote(t, raw)
	this := filepath.Join(dir, "this")
	writeBoundTDX(t, this, doc)
	code, out, errOut := runCLI(t, "check", "tdx", this, "--quote", quote, "--verify-at", "2023-07-01")
	if code != 0 || !strings.Contains(out, "this VM runs release spr@1 (tdx-spr)") || !strings.Contains(out, "binds          firmware, kernel, initrd, cmdline, rootfs") ||
		!regexp.MustCompile(`RTMR3 +not compared`).MatchString(out) {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	// A configuration whose values bind the firmware only: the verdict
	// says the VM matches in that, not that it runs the release.
	unbound := filepath.Join(dir, "unbound")
	writeJSONFile(t, filepath.Join(unbound, "measurements", "tdx-spr.json"), tdxFromQuote(t, raw))
	code, out, _ = runCLI(t, "check", "tdx", unbound, "--quote", quote, "--verify-at", "2023-07-01")
	if code != 0 || strings.Contains(out, "this VM runs") || !strings.Contains(out, "does not bind kernel, initrd, cmdline, rootfs") || !strings.Contains(out, "unbound        kernel, initrd, cmdline, rootfs") {
		t.Fatalf("unbound configuration: exit %d\n%s", code, out)
	}
	other := filepath.Join(dir, "other")
	r1 := strings.Repeat("ab", 48)
	doc.RTMR[1] = &r1
	writeJSONFile(t, filepath.Join(other, "measurements", "tdx-spr.json"), doc)
	code, out, _ = runCLI(t, "check", "tdx", other, "--quote", quote, "--verify-at", "2023-07-01")
	if code != outcome.Mismatch.Value || !strings.Contains(out, "RTMR1              DIFFERS") || !strings.Contains(out, "but RTMR1 differ") {
		t.Fatalf("other RTMR1: exit %d\n%s", code, out)
	}
	bad := append([]byte(nil), raw...)
	bad[48+584+4+20] ^= 1
	tampered := filepath.Join(dir, "tampered.dat")
	os.WriteFile(tampered, bad, 0o644)
	if code, out, _ = runCLI(t, "check", "tdx", this, "--quote", tampered, "--verify-at", "2023-07-01"); code != outcome.Signature.Value {
		t.Fatalf("changed signature byte: exit %d\n%s", code, out)
	}
	// A log of other events does not replay to this quote.
	log := filepath.Join(dir, "ccel.bin")
	os.WriteFile(log, tdx.EncodeLog([]tdx.Event{{RTMR: 1, Type: tdx.EvEFIAction, Description: "x"}}), 0o644)
	code, out, _ = runCLI(t, "check", "tdx", this, "--quote", quote, "--event-log", log, "--verify-at", "2023-07-01")
	if code != outcome.Mismatch.Value || !strings.Contains(out, "the log is not this TD's") {
		t.Fatalf("foreign log: exit %d\n%s", code, out)
	}
}

// tdxFromQuote makes the TDX reference document a release for this quote's
// TD would hold: its MRTD, RTMR0–2 (RTMR3 not computed) and XFAM.
func tdxFromQuote(t *testing.T, raw []byte) *refvalues.TDX {
	t.Helper()
	q, err := abi.QuoteToProto(raw)
	if err != nil {
		t.Fatal(err)
	}
	body := q.(*pb.QuoteV4).GetTdQuoteBody()
	doc := &refvalues.TDX{MRTD: []refvalues.MRTD{{PageOrder: "single-pass", Value: hex.EncodeToString(body.GetMrTd())}},
		NotComputed: []refvalues.TDXNotComputed{{RTMR: 3, Reason: "the guest extends RTMR3"}},
		XFAM:        fmt.Sprintf("%#x", binary.LittleEndian.Uint64(body.GetXfam()))}
	for i := 0; i < 3; i++ {
		v := hex.EncodeToString(body.GetRtmrs()[i])
		doc.RTMR[i] = &v
	}
	return doc
}

// writeBoundTDX writes doc as a release's TDX configuration whose values
// bind its whole image: the measured kernel is the image's vmlinuz and the
// measured command line (RTMR2) carries the dm-verity root hash.
func writeBoundTDX(t *testing.T, dir string, doc *refvalues.TDX) {
	t.Helper()
	const root = "4f9c7e1c2a0b8d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e"
	cmdline := "console=ttyS0 cvmkit.root=" + root
	d := *doc
	yes := true
	d.Kernel, d.Cmdline, d.GuestCC = &refvalues.File{Path: "vmlinuz", SHA256: strings.Repeat("ab", 32)}, &refvalues.TDXCmd{Value: cmdline}, &yes
	writeJSONFile(t, filepath.Join(dir, "measurements", "tdx-spr.json"), &d)
	writeJSONFile(t, filepath.Join(dir, "image", "image.lock.json"), refvalues.Lock{Release: "spr@1", Cmdline: cmdline,
		Verity: refvalues.LockVerity{RootHash: root}, Outputs: []refvalues.LockFile{{Name: "vmlinuz", SHA256: strings.Repeat("ab", 32)}}})
}

// TestCheckSNPWithCvmkitMeasurement: a report carrying the measurement
// cvmkit computed for a launch (signed with go-sev-guest's test-only AMD
// chain, trusted with --amd-roots) is accepted by 'check snp' against the
// release documents cvmkit wrote; the same report with another policy, or
// from a machine whose TCB is below the release's minimum, is not.
func TestCheckSNPWithCvmkitMeasurement(t *testing.T) {
	shared := testenv.Shared(t)
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "measure", "snp", "--json", "--ovmf", filepath.Join(shared, "fixtures/firmware/OVMF.fd"),
		"--vcpus", "2", "--vcpu-type", "EPYC-Milan", "--policy", "0x30000")
	if code != 0 {
		t.Fatalf("measure snp: %d %s", code, errOut)
	}
	var doc refvalues.SNP
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	doc.MinimumTCB = &refvalues.TCB{Bootloader: 2}
	rel := filepath.Join(dir, "rel")
	writeJSONFile(t, filepath.Join(rel, "measurements", "snp-qemu.json"), doc)

	now := time.Now()
	signer, err := sevtest.DefaultTestOnlyCertChain(kds.ProductName(sevabi.DefaultSevProduct()), now)
	if err != nil {
		t.Fatal(err)
	}
	roots := filepath.Join(dir, "roots.pem")
	os.WriteFile(roots, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: signer.Ask.Raw}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: signer.Ark.Raw})...), 0o644)
	vcek := filepath.Join(dir, "vcek.der")
	os.WriteFile(vcek, signer.Vcek.Raw, 0o644)
	measurement, _ := hex.DecodeString(doc.Measurements[0].Digest)
	report := func(name string, policy uint64, bootloader uint8) string {
		tcb, _ := kds.ComposeTCBParts(kds.TCBParts{BlSpl: bootloader})
		r := &spb.Report{Version: 2, Policy: policy, SignatureAlgo: 1, ReportData: make([]byte, sevabi.ReportDataSize),
			FamilyId: make([]byte, 16), ImageId: make([]byte, 16), Measurement: measurement, HostData: make([]byte, sevabi.HostDataSize),
			IdKeyDigest: make([]byte, 48), AuthorKeyDigest: make([]byte, 48), ReportId: make([]byte, sevabi.ReportIDSize),
			ReportIdMa: make([]byte, sevabi.ReportIDMASize), ChipId: make([]byte, sevabi.ChipIDSize),
			CurrentTcb: uint64(tcb), CommittedTcb: uint64(tcb), ReportedTcb: uint64(tcb), LaunchTcb: uint64(tcb),
			Signature: make([]byte, sevabi.SignatureSize)}
		raw, err := sevabi.ReportToAbiBytes(r)
		if err != nil {
			t.Fatal(err)
		}
		rs, ss, err := signer.Sign(sevabi.SignedComponent(raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := sevabi.SetSignature(rs, ss, raw); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, raw, 0o644)
		return p
	}
	args := func(r string) []string {
		return []string{"check", "snp", rel, "--report", r, "--vcek", vcek, "--amd-roots", roots, "--product", "Milan"}
	}
	code, out, errOut = runCLI(t, args(report("good.bin", 0x30000, 3))...)
	if code != 0 || !strings.Contains(out, "(snp-qemu.qemu-EPYC-Milan-2vcpu)") {
		t.Fatalf("cvmkit's own measurement: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, args(report("debug.bin", 0xb0000, 3))...)
	if code != outcome.Mismatch.Value || !strings.Contains(out, "but POLICY, POLICY.DEBUG differ") {
		t.Fatalf("debug policy: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, args(report("old.bin", 0x30000, 1))...)
	if code != outcome.Policy.Value || !strings.Contains(out, "REPORTED_TCB       DIFFERS") {
		t.Fatalf("old bootloader: exit %d\n%s", code, out)
	}
	// Without --amd-roots the test chain is not AMD's: refused.
	if code, _, _ = runCLI(t, "check", "snp", rel, "--report", filepath.Join(dir, "good.bin"), "--vcek", vcek, "--product", "Milan"); code != outcome.Signature.Value {
		t.Fatalf("test chain against the pinned roots: exit %d", code)
	}
}

// TestCheckSNPWithGPU: one call answers for the CPU and the GPU. NVIDIA's
// published H100 report (nvtrust, driver 545.00) as SDK-format evidence is
// checked against the release's gpu/gpu-reference.json beside the SEV-SNP
// report; a GPU nonce that is not the report's fails the call (exit 5).
func TestCheckSNPWithGPU(t *testing.T) {
	shared := testenv.Shared(t)
	g := filepath.Join(shared, "fixtures/gpu/nvtrust")
	gsg := filepath.Join(testenv.ModuleDir(t, "github.com/google/go-sev-guest"), "verify", "testdata")
	const m = "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"
	rel := t.TempDir()
	writeJSONFile(t, filepath.Join(rel, "measurements", "snp-gce.json"), refvalues.SNP{Mode: "snp", Policy: "0xb0000", Measurements: []refvalues.SNPEntry{{Name: "gce", Digest: m}}})
	os.MkdirAll(filepath.Join(rel, "gpu"), 0o755)
	code, _, errOut := runCLI(t, "gpu", "reference", "--rim", filepath.Join(g, "rims/1010_0200_882_96005E0001_test_no_gpu.swidtag"),
		"--rim", filepath.Join(g, "rims/Driver_RIM_test_no_gpu.swidtag"), "--verify-at", "2024-01-01", "-o", filepath.Join(rel, "gpu", "gpu-reference.json"))
	if code != 0 {
		t.Fatalf("gpu reference: %d %s", code, errOut)
	}
	report, _ := os.ReadFile(filepath.Join(g, "reports/attestationReport_545.00_96.00.5E.00.01.hex"))
	chain, _ := os.ReadFile(filepath.Join(g, "reports/gpuAkCertChain_545.00.pem"))
	ev := filepath.Join(t.TempDir(), "gpu.json")
	writeJSONFile(t, ev, []map[string]string{{"arch": "HOPPER", "evidence": strings.TrimSpace(string(report)), "certificate": string(chain)}})
	args := []string{"check", "snp", rel, "--report", filepath.Join(gsg, "attestation.bin"), "--vcek", filepath.Join(gsg, "vcek.testcer"), "--verify-at", "2024-01-01", "--gpu-evidence", ev}
	// The SEV-SNP report is a debug VM's (policy 0xb0000): exit 6 for it,
	// while its GPU matches.
	code, out, errOut := runCLI(t, append(args, "--gpu-nonce", "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e")...)
	if code != outcome.Policy.Value || !strings.Contains(out, "with 1 GPU(s) matching its GPU reference values") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, append(args, "--gpu-nonce", strings.Repeat("00", 32))...)
	if code != outcome.Mismatch.Value || !strings.Contains(out, "a GPU does not match") {
		t.Fatalf("other GPU nonce: exit %d\n%s", code, out)
	}
}

// TestCheckTDXCollateral: with go-tdx-guest's sample PCS collateral given
// as files, the collateral verifies but has no TCB level for this quote's
// platform: exit 6 naming TCB_STATUS; expired collateral: exit 4.
func TestCheckTDXCollateral(t *testing.T) {
	mod := filepath.Join(testenv.ModuleDir(t, "github.com/google/go-tdx-guest"), "testing", "testdata")
	quote := filepath.Join(mod, "tdx_prod_quote_SPR_E4.dat")
	raw, _ := os.ReadFile(quote)
	rel := t.TempDir()
	writeJSONFile(t, filepath.Join(rel, "measurements", "tdx-spr.json"), tdxFromQuote(t, raw))
	chain, err := url.QueryUnescape(tdxtest.TcbInfoHeader["Tcb-Info-Issuer-Chain"][0])
	if err != nil {
		t.Fatal(err)
	}
	chainFile := filepath.Join(t.TempDir(), "chain.pem")
	os.WriteFile(chainFile, []byte(chain), 0o644)
	args := []string{"check", "tdx", rel, "--quote", quote, "--tcb-info", filepath.Join(mod, "sample_tcbInfo_response"),
		"--qe-identity", filepath.Join(mod, "sample_qeIdentity_response"), "--tcb-signing-chain", chainFile}
	code, out, errOut := runCLI(t, append(args, "--verify-at", "2023-07-01")...)
	if code != outcome.Policy.Value || !strings.Contains(out, "TCB_STATUS         DIFFERS") || !strings.Contains(out, "no matching TCB level") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ = runCLI(t, append(args, "--verify-at", "2023-09-01")...); code != outcome.Signature.Value || !strings.Contains(out, "tcbInfo has expired") {
		t.Fatalf("expired collateral: exit %d\n%s", code, out)
	}
	if code, _, _ = runCLI(t, "check", "tdx", rel, "--quote", quote, "--tcb-info", "x"); code != outcome.Usage.Value {
		t.Fatalf("one collateral file: exit %d", code)
	}
}

// TestCheckHostileInputs: the hostile-input pass's reproductions, each as
// it is answered now.
func TestCheckHostileInputs(t *testing.T) {
	gsg := filepath.Join(testenv.ModuleDir(t, "github.com/google/go-sev-guest"), "verify", "testdata")
	report, vcek := filepath.Join(gsg, "attestation.bin"), filepath.Join(gsg, "vcek.testcer")
	quote := filepath.Join(testenv.ModuleDir(t, "github.com/google/go-tdx-guest"), "testing", "testdata", "tdx_prod_quote_SPR_E4.dat")
	rawQuote, _ := os.ReadFile(quote)
	dir := t.TempDir()
	rel := filepath.Join(dir, "rel")
	writeJSONFile(t, filepath.Join(rel, "measurements", "snp-gce.json"), refvalues.SNP{Mode: "snp", Measurements: []refvalues.SNPEntry{{Name: "gce", Digest: strings.Repeat("00", 48)}}})
	writeBoundTDX(t, rel, tdxFromQuote(t, rawQuote))
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(report)
	reserved := append([]byte(nil), raw...)
	reserved[0x4c] ^= 1 // a must-be-zero byte: the report no longer parses
	tampered := filepath.Join(dir, "reserved.bin")
	os.WriteFile(tampered, reserved, 0o644)
	shortSigned := append([]byte(nil), rawQuote...)
	binary.LittleEndian.PutUint32(shortSigned[632:], 64)
	short := filepath.Join(dir, "short.dat")
	os.WriteFile(short, shortSigned, 0o644)

	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		// go-tdx-guest's parser panicked on a signed-data size of 0–133.
		{"short signed data", []string{"check", "tdx", rel, "--quote", short}, outcome.Input.Value, "fewer than the 590 its fixed parts need"},
		// A changed report whose fields no longer parse is not authentic.
		{"tampered reserved byte", []string{"check", "snp", rel, "--report", tampered, "--vcek", vcek, "--verify-at", "2024-01-01"}, outcome.Signature.Value, "signature does not verify over its bytes"},
		{"FIFO report", []string{"check", "snp", rel, "--report", fifo, "--vcek", vcek}, outcome.Input.Value, "a FIFO"},
		{"device quote", []string{"check", "tdx", rel, "--quote", "/dev/zero"}, outcome.Input.Value, "a device"},
		{"FIFO event log", []string{"check", "tdx", rel, "--quote", quote, "--event-log", fifo}, outcome.Input.Value, "a FIFO"},
		{"zero time", []string{"check", "tdx", rel, "--quote", quote, "--verify-at", "0001-01-01"}, outcome.Usage.Value, "before 2010-01-01"},
		{"empty nonce", []string{"check", "tdx", rel, "--quote", quote, "--nonce", ""}, outcome.Usage.Value, "--nonce is empty"},
		{"empty GPU nonce", []string{"check", "tdx", rel, "--quote", quote, "--gpu-nonce", ""}, outcome.Usage.Value, "--gpu-nonce is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan struct{})
			var code int
			var errOut string
			go func() { code, _, errOut = runCLI(t, c.args...); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("still running after 20 s")
			}
			if code != c.code || !strings.Contains(errOut, c.stderr) {
				t.Fatalf("exit %d, want %d with %q\n%s", code, c.code, c.stderr, errOut)
			}
		})
	}
}

// TestCheckNamesTheRoots: with --amd-roots the verdict names the roots
// given (by subject and SHA-256), not the pinned ones; the time used is
// stated even when --verify-at is left at now.
func TestCheckNamesTheRoots(t *testing.T) {
	dir := t.TempDir()
	signer, err := sevtest.DefaultTestOnlyCertChain(kds.ProductName(sevabi.DefaultSevProduct()), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := filepath.Join(dir, "roots.pem")
	os.WriteFile(roots, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: signer.Ask.Raw}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: signer.Ark.Raw})...), 0o644)
	vcek := filepath.Join(dir, "vcek.der")
	os.WriteFile(vcek, signer.Vcek.Raw, 0o644)
	r := &spb.Report{Version: 2, Policy: 0x30000, SignatureAlgo: 1, ReportData: make([]byte, sevabi.ReportDataSize),
		FamilyId: make([]byte, 16), ImageId: make([]byte, 16), Measurement: make([]byte, 48), HostData: make([]byte, sevabi.HostDataSize),
		IdKeyDigest: make([]byte, 48), AuthorKeyDigest: make([]byte, 48), ReportId: make([]byte, sevabi.ReportIDSize),
		ReportIdMa: make([]byte, sevabi.ReportIDMASize), ChipId: make([]byte, sevabi.ChipIDSize), Signature: make([]byte, sevabi.SignatureSize)}
	raw, _ := sevabi.ReportToAbiBytes(r)
	rs, ss, _ := signer.Sign(sevabi.SignedComponent(raw))
	sevabi.SetSignature(rs, ss, raw)
	report := filepath.Join(dir, "report.bin")
	os.WriteFile(report, raw, 0o644)
	rel := filepath.Join(dir, "rel")
	writeJSONFile(t, filepath.Join(rel, "measurements", "snp-x.json"), refvalues.SNP{Mode: "snp", Measurements: []refvalues.SNPEntry{{Name: "x", Digest: strings.Repeat("00", 48)}}})
	code, out, errOut := runCLI(t, "check", "snp", rel, "--report", report, "--vcek", vcek, "--amd-roots", roots, "--product", "Milan", "--json")
	var res verify.EvidenceCheck
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 {
		t.Fatalf("exit %d %v\n%s%s", code, err, out, errOut)
	}
	if strings.Contains(res.Authentic, "pinned in cvmkit") || !strings.Contains(res.Authentic, "the given AMD roots (") || !strings.Contains(res.Authentic, "sha256:") {
		t.Fatalf("authentic: %s", res.Authentic)
	}
	if at, err := time.Parse(time.RFC3339, res.VerifiedAt); err != nil || time.Since(at) > time.Hour || !strings.Contains(res.Authentic, res.VerifiedAt) {
		t.Fatalf("verified_at %q (%v), authentic %q", res.VerifiedAt, err, res.Authentic)
	}
}
