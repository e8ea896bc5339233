package gpu

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cvmkit/cvmkit/measure/gpu/spdm"
	"github.com/cvmkit/cvmkit/outcome"
)

// loadReport reads a hex report fixture and its chain.
func loadReport(t *testing.T, rep, chain string) ([]byte, []*x509.Certificate) {
	t.Helper()
	b, err := spdm.DecodeReport(readFixture(t, rep))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ParseCertificates(readFixture(t, chain))
	if err != nil {
		t.Fatal(err)
	}
	return b, certs
}

func verifyFixture(t *testing.T, rep, chain string) *VerifiedReport {
	t.Helper()
	b, certs := loadReport(t, rep, chain)
	v, err := VerifyReport(b, certs, ReportOptions{ChainOptions: ChainOptions{At: now}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestReportFixtures verifies every attestation report of the fixtures with
// its chain and compares what it carries with INVENTORY.json.
func TestReportFixtures(t *testing.T) {
	n := 0
	for _, e := range inventory(t) {
		if e.Kind != "SPDM attestation report (hex)" {
			continue
		}
		n++
		t.Run(path.Base(e.Path), func(t *testing.T) {
			b, certs := loadReport(t, e.Path, path.Join(path.Dir(e.Path), e.CertChain))
			v, err := VerifyReport(b, certs, ReportOptions{ChainOptions: ChainOptions{At: now}})
			if !*e.SigChainOK {
				if !errors.Is(err, ErrSignature) {
					t.Fatalf("want a signature error, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Driver == "(switch)" {
				e.Driver = ""
			}
			if e.VBIOS == "-" || e.VBIOS == "" {
				e.VBIOS = v.VBIOSVersion() // NVSwitch: INVENTORY records none
			}
			if e.VBIOSRIMID == "-" {
				e.VBIOSRIMID = ""
			}
			got := []string{v.DriverVersion(), v.VBIOSVersion(), v.VBIOSRIMID(), hex.EncodeToString(v.Nonce[:])}
			want := []string{e.Driver, e.VBIOS, e.VBIOSRIMID, e.Nonce}
			if e.Driver == "" {
				got[2], want[2] = "", "" // no VBIOS RIM ID for a switch
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %q, INVENTORY %q", got, want)
			}
			if v.Chain.Revocation != RevocationNotChecked || Fingerprint(v.Chain.Certs[len(v.Chain.Certs)-1]) != DeviceRootSHA256 {
				t.Fatal("chain does not end at the pinned device root")
			}
		})
	}
	if n != 10 {
		t.Fatalf("INVENTORY lists %d reports, want 10", n)
	}
}

// TestReportMatchesNVIDIAParser compares the parse of the 580.159.03 report
// with NVIDIA's own parser output (attestation SDK spdm_parsed_output.json
// and spdm_req_parsed_output.json).
func TestReportMatchesNVIDIAParser(t *testing.T) {
	v := verifyFixture(t, "attestation-sdk/reports/testdata_hopperAttestationReport_580.159.03_96.00.74.00.20.hex", "attestation-sdk/reports/testdata_hopperCertChain_580.159.03.pem")
	var req map[string]string
	if err := json.Unmarshal(readFixture(t, "attestation-sdk/parsed/spdm_req_parsed_output.json"), &req); err != nil {
		t.Fatal(err)
	}
	if req["Nonce"] != "0x"+hex.EncodeToString(v.Nonce[:]) || req["Param1"] != fmt.Sprintf("0x%02x", v.RequestParam1) || req["Param2"] != fmt.Sprintf("0x%02x", v.RequestParam2) {
		t.Fatalf("request %v", req)
	}
	var resp struct {
		NumberOfBlocks          int
		MeasurementRecordLength int
		Nonce                   string
		OpaqueLength            int
		Signature               string
		MeasurementRecord       struct {
			MeasurementBlocks map[string]struct {
				DMTFSpecMeasurementValueType int
				DMTFSpecMeasurementValueSize int
				DMTFSpecMeasurementValue     string
			}
		}
		OpaqueData struct {
			OpaqueDataField map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(readFixture(t, "attestation-sdk/parsed/spdm_parsed_output.json"), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.NumberOfBlocks != len(v.Blocks) || resp.Nonce != "0x"+hex.EncodeToString(v.ResponderNonce[:]) || resp.Signature != "0x"+hex.EncodeToString(v.Signature) {
		t.Fatal("response header differs")
	}
	for k, want := range resp.MeasurementRecord.MeasurementBlocks {
		idx, _ := strconv.Atoi(k)
		b, ok := v.Block(idx)
		if !ok || int(b.ValueType) != want.DMTFSpecMeasurementValueType || len(b.Value) != want.DMTFSpecMeasurementValueSize || "0x"+hex.EncodeToString(b.Value) != want.DMTFSpecMeasurementValue {
			t.Fatalf("block %s differs", k)
		}
	}
	fields := 0
	for name, raw := range resp.OpaqueData.OpaqueDataField {
		var typ uint16
		for tp := uint16(1); tp < 64; tp++ {
			if "OPAQUE_FIELD_ID_"+spdm.OpaqueName(tp) == name {
				typ = tp
			}
		}
		val, ok := v.Field(typ)
		if !ok {
			t.Fatalf("no opaque field %s", name)
		}
		fields++
		if name == "OPAQUE_FIELD_ID_MSRSCNT" {
			var want []uint32
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v.MeasurementCounts(), want) {
				t.Fatal("MSRSCNT differs")
			}
			continue
		}
		var want string
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		if "0x"+hex.EncodeToString(val) != want {
			t.Fatalf("%s: got %x, NVIDIA %s", name, val, want)
		}
	}
	if fields != 14 {
		t.Fatalf("compared %d opaque fields", fields)
	}
}

// TestReportMatchesTrusteeClaims compares with the claims Trustee's NVIDIA
// verifier derives from the same report (its lowercase VBIOS form and its
// 1-based measurement keys).
func TestReportMatchesTrusteeClaims(t *testing.T) {
	v := verifyFixture(t, "trustee/hopperAttestationReport.txt", "trustee/hopper_cert_chain_case1.txt")
	var claims struct {
		Config struct {
			BoardID          string            `json:"board_id"`
			ChipSKU          string            `json:"chip_sku"`
			DriverVersion    string            `json:"driver_version"`
			FWID             string            `json:"fwid"`
			Project          string            `json:"project"`
			ProjectSKU       string            `json:"project_sku"`
			VBIOSVersion     string            `json:"vbios_version"`
			MeasurementCount map[string]uint32 `json:"measurement_count"`
		} `json:"config"`
		Measurements map[string]string `json:"measurements"`
	}
	if err := json.Unmarshal(readFixture(t, "trustee/hopperAttestationReport-claims.txt"), &claims); err != nil {
		t.Fatal(err)
	}
	c := claims.Config
	field := func(typ uint16) string { b, _ := v.Field(typ); return spdm.ASCIIField(b) }
	bid, _ := v.Field(spdm.OpaqueBoardID)
	got := []string{hex.EncodeToString(bid), field(spdm.OpaqueChipSKU), v.DriverVersion(), hex.EncodeToString(v.FWID()), field(spdm.OpaqueProject), field(spdm.OpaqueProjectSKU), strings.ToLower(v.VBIOSVersion())}
	want := []string{c.BoardID, c.ChipSKU, c.DriverVersion, c.FWID, c.Project, c.ProjectSKU, c.VBIOSVersion}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, Trustee %q", got, want)
	}
	if len(claims.Measurements) != 64 {
		t.Fatalf("%d measurements", len(claims.Measurements))
	}
	counts := v.MeasurementCounts()
	for k, m := range claims.Measurements {
		idx, _ := strconv.Atoi(k)
		b, ok := v.Block(idx)
		if !ok || hex.EncodeToString(b.Value) != m || counts[idx-1] != c.MeasurementCount[k] {
			t.Fatalf("measurement %s differs", k)
		}
	}
}

// TestReportRefusals: broken chains (Trustee's cases 2–4), a changed byte, a
// foreign nonce, and bytes after the signature.
func TestReportRefusals(t *testing.T) {
	b, _ := loadReport(t, "trustee/hopperAttestationReport.txt", "trustee/hopper_cert_chain_case1.txt")
	opts := ReportOptions{ChainOptions: ChainOptions{At: now}}
	for _, c := range []string{"case2", "case3", "case4"} {
		certs, err := ParseCertificates(readFixture(t, "trustee/hopper_cert_chain_"+c+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyReport(b, certs, opts); !errors.Is(err, ErrUntrusted) {
			t.Errorf("chain %s: want untrusted, got %v", c, err)
		}
	}
	_, certs := loadReport(t, "trustee/hopperAttestationReport.txt", "trustee/hopper_cert_chain_case1.txt")
	// Another GPU's chain: signature fails.
	_, other := loadReport(t, "nvtrust/reports/attestationReport_545.00_96.00.5E.00.01.hex", "nvtrust/reports/gpuAkCertChain_545.00.pem")
	if _, err := VerifyReport(b, other, opts); !errors.Is(err, ErrSignature) {
		t.Errorf("foreign chain: %v", err)
	}
	// One measurement byte changed.
	bad := bytes.Clone(b)
	bad[spdm.RequestLen+8+7] ^= 1
	if _, err := VerifyReport(bad, certs, opts); !errors.Is(err, ErrSignature) {
		t.Errorf("changed byte: %v", err)
	}
	// Nonce.
	v, err := VerifyReport(b, certs, opts)
	if err != nil {
		t.Fatal(err)
	}
	o := opts
	o.Nonce = v.Nonce[:]
	if _, err := VerifyReport(b, certs, o); err != nil {
		t.Errorf("right nonce: %v", err)
	}
	o.Nonce = make([]byte, 32)
	_, err = VerifyReport(b, certs, o)
	var ne *NonceError
	if !errors.Is(err, ErrNonce) || !errors.As(err, &ne) || !bytes.Equal(ne.Got, v.Nonce[:]) || !bytes.Equal(ne.Want, o.Nonce) {
		t.Errorf("wrong nonce: %v", err)
	}
	// The CoCo capture with one zero byte after the signature is accepted
	// and says so; a non-zero byte there is refused.
	cb, ccerts := loadReport(t, "trustee/hopper_coco_report1.txt", "trustee/hopper_coco_certs1.txt")
	cv, err := VerifyReport(cb, ccerts, opts)
	if err != nil || cv.Trailing != 1 {
		t.Fatalf("CoCo capture: %v", err)
	}
	cb[len(cb)-1] = 7
	if _, err := spdm.ParseReport(cb); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "not zero padding") {
		t.Errorf("non-zero tail: %v", err)
	}
	// Truncations at every length are errors, never panics.
	for i := range len(b) {
		if _, err := spdm.ParseReport(b[:i]); err == nil {
			t.Fatalf("truncated to %d bytes accepted", i)
		}
	}
}

// crossMatchRE reads a row of INVENTORY.md's "Report x RIM cross-match".
var crossMatchRE = regexp.MustCompile(`^\| (\S+) \| (\S+) \| version_match=True checked=(\d+) mismatched=(None|\[[0-9, ]*\]) \|$`)

// TestCrossMatch reproduces every row of INVENTORY.md's report × RIM
// cross-match table, the two full positive pairs included.
func TestCrossMatch(t *testing.T) {
	sc := bufio.NewScanner(bytes.NewReader(readFixture(t, "INVENTORY.md")))
	chains := map[string]string{}
	for _, e := range inventory(t) {
		if e.CertChain != "" {
			chains[e.Path] = path.Join(path.Dir(e.Path), e.CertChain)
		}
	}
	rows := 0
	var driverRows []string
	for sc.Scan() {
		m := crossMatchRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		rows++
		rep, rimPath := m[1], m[2]
		wantChecked, _ := strconv.Atoi(m[3])
		wantBad := []int{}
		if m[4] != "None" {
			for _, s := range strings.Split(strings.Trim(m[4], "[]"), ",") {
				i, _ := strconv.Atoi(strings.TrimSpace(s))
				wantBad = append(wantBad, i)
			}
		}
		v := verifyFixture(t, rep, chains[rep])
		rimData := readFixture(t, rimPath)
		rim, err := VerifyRIM(rimData, RIMOptions{ChainOptions: ChainOptions{At: signerNotBefore(t, rimData).Add(time.Hour)}})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := NewReference([]*RIM{rim}, []string{rimPath})
		if err != nil {
			t.Fatal(err)
		}
		c := Compare(v, ref)
		allowed := c.VBIOSAllowed
		if rim.Kind == KindDriver {
			allowed = c.DriverAllowed
			driverRows = append(driverRows, rep)
		}
		checked, bad := 0, []int{}
		for _, r := range c.Indices {
			if r.Status != StatusSkipped {
				checked++
			}
			if r.Status == StatusMismatch || r.Status == StatusMissing {
				bad = append(bad, r.RIMIndex)
			}
		}
		if allowed == nil || !*allowed || checked != wantChecked || !reflect.DeepEqual(bad, wantBad) {
			t.Errorf("%s × %s: checked %d mismatched %v, INVENTORY %d %v", rep, rimPath, checked, bad, wantChecked, wantBad)
		}
	}
	if rows != 10 || len(driverRows) != 1 {
		t.Fatalf("read %d cross-match rows (%d driver), want 10 (1)", rows, len(driverRows))
	}
}

// TestFullPairs: the two complete positive pairs match on every index as
// one reference, with index 35 skipped by the NVDEC0 rule; with NVDEC0
// reported enabled the index is compared.
func TestFullPairs(t *testing.T) {
	at := func(rel string) *RIM {
		d := readFixture(t, rel)
		r, err := VerifyRIM(d, RIMOptions{ChainOptions: ChainOptions{At: signerNotBefore(t, d).Add(time.Hour)}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	sdk := verifyFixture(t, "attestation-sdk/reports/sample_hopperAttestationReport.txt", "attestation-sdk/reports/sample_hopperCertChain.txt")
	ref, err := NewReference([]*RIM{at("nvtrust/rims/1010_0200_882_96005E0001_PROD.swidtag")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := Compare(sdk, ref)
	if len(c.Indices) != 12 || len(c.Mismatches()) != 0 || c.DriverAllowed != nil || len(c.Unchecked) != 2 {
		t.Fatalf("SDK sample: %+v", c)
	}

	v := verifyFixture(t, "nvtrust/reports/attestationReport_545.00_96.00.5E.00.01.hex", "nvtrust/reports/gpuAkCertChain_545.00.pem")
	ref, err = NewReference([]*RIM{at("nvtrust/rims/Driver_RIM_test_no_gpu.swidtag"), at("nvtrust/rims/1010_0200_882_96005E0001_test_no_gpu.swidtag")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c = Compare(v, ref)
	var skipped []int
	for _, r := range c.Indices {
		if r.Status == StatusSkipped {
			skipped = append(skipped, r.RIMIndex)
		}
	}
	if len(c.Indices) != 33 || len(c.Mismatches()) != 0 || !reflect.DeepEqual(skipped, []int{35}) || !*c.VBIOSAllowed || !*c.DriverAllowed {
		t.Fatalf("545.00 pair: %d indices, mismatches %v, skipped %v", len(c.Indices), c.Mismatches(), skipped)
	}
	// NVDEC0 enabled (0xAA): index 35 is compared like any other.
	for i, f := range v.Opaque {
		if f.Type == spdm.OpaqueNVDEC0Status {
			v.Opaque[i].Value = []byte{0xAA}
		}
	}
	c = Compare(v, ref)
	for _, r := range c.Indices {
		if r.RIMIndex == 35 && r.Status == StatusSkipped {
			t.Fatal("index 35 skipped with NVDEC0 enabled")
		}
	}
	// Another VBIOS version in the reference: not allowed.
	ref.RIMs[1].Version = "96.00.5E.00.02"
	if c := Compare(v, ref); c.VBIOSAllowed == nil || *c.VBIOSAllowed || len(c.Indices) != 21 {
		t.Fatalf("wrong VBIOS version judged allowed: %+v", c.VBIOSAllowed)
	}
}

// TestReferenceConflict: a VBIOS and a driver RIM of the same chip that
// share an active index are refused (NVIDIA's index-no-conflict rule).
func TestReferenceConflict(t *testing.T) {
	d := readFixture(t, "nvtrust/rims/1010_0200_882_96005E0001_PROD.swidtag")
	vb, err := VerifyRIM(d, RIMOptions{ChainOptions: ChainOptions{At: nvRIMTime}})
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPKI(t)
	driver := strings.Replace(testRIMBody, `colloquialVersion="99.00.01.00.01"`, `colloquialVersion="999.1"`, 1)
	drv, err := VerifyRIM(p.sign(t, driver), RIMOptions{Root: p.root, ChainOptions: ChainOptions{At: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}})
	if err != nil || drv.Kind != KindDriver {
		t.Fatal(err)
	}
	_, err = NewReference([]*RIM{vb, drv}, []string{"vbios.xml", "driver.xml"})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "active index 0") {
		t.Fatalf("want a conflict on index 0, got %v", err)
	}
	if _, err := NewReference([]*RIM{vb, vb}, nil); err == nil {
		t.Fatal("the same RIM twice accepted")
	}
}

// TestEvidenceFiles reads the attestation SDK's evidence files (single and
// multi-GPU), and the same evidence re-serialised as NRAS and Trustee
// requests, and verifies every GPU in them.
func TestEvidenceFiles(t *testing.T) {
	for _, f := range []string{"hopper_evidence.json", "evidence_hopper_590_12.json", "multi_gpu_hopper.json", "hopper_evidence_cert_hold.json", "multi_switch_ls10.json", "switch_evidence_ls10.json"} {
		ev, err := ParseEvidence(readFixture(t, "attestation-sdk/evidence/"+f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if strings.HasPrefix(f, "multi") && len(ev) != 4 {
			t.Fatalf("%s: %d GPUs", f, len(ev))
		}
		for i, e := range ev {
			certs, err := ParseCertificates(e.CertChain)
			if err != nil {
				t.Fatal(err)
			}
			nonce, _ := hex.DecodeString(e.Nonce)
			if _, err := VerifyReport(e.Report, certs, ReportOptions{ChainOptions: ChainOptions{At: now}, Nonce: nonce}); err != nil {
				t.Errorf("%s GPU %d: %v", f, i, err)
			}
		}
	}
	rep, _ := spdm.DecodeReport(readFixture(t, "trustee/hopperAttestationReport.txt"))
	chain := base64.StdEncoding.EncodeToString(readFixture(t, "trustee/hopper_cert_chain_case1.txt"))
	nonce := hex.EncodeToString(rep[4:36])
	for name, doc := range map[string]string{
		"nras":    `{"nonce":"` + nonce + `","arch":"HOPPER","claims_version":"3.0","evidence_list":[{"evidence":"` + base64.StdEncoding.EncodeToString(rep) + `","certificate":"` + chain + `"}]}`,
		"trustee": `{"device_evidence_list":[{"arch":"Hopper","uuid":"GPU-1","evidence":"` + hex.EncodeToString(rep) + `","certificate":"` + chain + `"}]}`,
	} {
		ev, err := ParseEvidence([]byte(doc))
		if err != nil || len(ev) != 1 || !bytes.Equal(ev[0].Report, rep) {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "nras" && (ev[0].Nonce != nonce || ev[0].Arch != "HOPPER") {
			t.Fatalf("nras: file-level nonce/arch not applied: %+v", ev[0])
		}
	}
	for _, bad := range []string{``, `[]`, `{"evidence_list":[{"evidence":"!!","certificate":""}]}`, `{"unknown":1}`, `"x"`} {
		if _, err := ParseEvidence([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestSwitchPair: the NVSwitch report (ASCII BIOS version, no driver)
// against the NVSwitch BIOS RIM of the same version.
func TestSwitchPair(t *testing.T) {
	v := verifyFixture(t, "attestation-sdk/reports/switchAttestationReport.txt", "attestation-sdk/reports/switchCertChain.txt")
	rim, err := VerifyRIM(readFixture(t, "attestation-sdk/rims/switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml"), RIMOptions{ChainOptions: ChainOptions{At: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := NewReference([]*RIM{rim}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := Compare(v, ref)
	if v.Product != "LS10" || c.VBIOSAllowed == nil || !*c.VBIOSAllowed || c.DriverAllowed != nil {
		t.Fatalf("%s %+v", v.Product, c)
	}
	if len(c.Indices) != 31 || len(c.Mismatches()) != 0 {
		t.Fatalf("switch: %d indices, mismatches %v", len(c.Indices), c.Mismatches())
	}
}

// TestCheckAllOneEntryPerGPU: evidence that repeats one GPU is refused for
// the repeat (a thousand copies of one report are not a thousand GPUs), and
// an "arch" that is not the device certificate's chip is a mismatch.
func TestCheckAllOneEntryPerGPU(t *testing.T) {
	d := readFixture(t, "nvtrust/rims/1010_0200_882_96005E0001_PROD.swidtag")
	rim, err := VerifyRIM(d, RIMOptions{ChainOptions: ChainOptions{At: signerNotBefore(t, d).Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := NewReference([]*RIM{rim}, nil)
	if err != nil {
		t.Fatal(err)
	}
	items, err := ParseItems(readFixture(t, "attestation-sdk/evidence/multi_gpu_hopper.json"), "ev")
	if err != nil {
		t.Fatal(err)
	}
	res, _, _ := CheckAll(items, ref, nil, ChainOptions{At: now})
	devices := map[string]bool{}
	for _, g := range res.GPUs {
		if g.Device == "" || devices[g.Device] || strings.Contains(g.Error, "same GPU") {
			t.Fatalf("four distinct GPUs: %+v", g)
		}
		devices[g.Device] = true
	}
	repeated := []Item{items[0], items[1], items[0]}
	res, _, err = CheckAll(repeated, ref, nil, ChainOptions{At: now})
	var mm *outcome.MismatchError
	if res.OK || !strings.Contains(res.GPUs[2].Error, "the same GPU as GPU 0") || res.GPUs[2].OK {
		t.Fatalf("repeated GPU: %+v", res.GPUs[2])
	}
	// The first failure of the set is GPU 0's version (policy); the
	// repeat is a mismatch of its own.
	if err == nil {
		t.Fatal("no error")
	}
	one := []Item{items[0], items[0]}
	one[0].Arch, one[1].Arch = "", ""
	res, _, _ = CheckAll(one, ref, nil, ChainOptions{At: now})
	if !strings.Contains(res.GPUs[1].Error, "device identity") {
		t.Fatalf("repeat: %+v", res.GPUs[1])
	}
	wrong := items[0]
	wrong.Arch = "BLACKWELL"
	_, _, err = CheckAll([]Item{wrong}, ref, nil, ChainOptions{At: now})
	if !errors.As(err, &mm) || mm.Register != "arch" || !strings.Contains(mm.Want, "HOPPER") {
		t.Fatalf("wrong arch: %v", err)
	}
	wrong.Arch = "hopper"
	if _, _, err = CheckAll([]Item{wrong}, ref, nil, ChainOptions{At: now}); errors.As(err, &mm) {
		t.Fatalf("arch in another case: %v", err)
	}
	if _, _, err := CheckAll(make([]Item, MaxGPUs+1), ref, nil, ChainOptions{At: now}); err == nil {
		t.Fatal("more GPUs than a node has")
	}
}
