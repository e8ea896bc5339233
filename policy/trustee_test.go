package policy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/refvalues"
	"github.com/open-policy-agent/opa/v1/rego"
)

func testValues() *Values {
	r := func(b byte) []byte { return bytes.Repeat([]byte{b}, 48) }
	return &Values{
		Release:  "demo@1.0.0",
		Resource: "default/model/demo",
		Launches: []Launch{
			{Name: "qemu-EPYC-Milan-4vcpu", Platform: SNP, SNPPins: refvalues.SNPPins{Measurement: r(0x11), Policy: 0x30000}, Binds: Bindable},
			{Name: "qemu-EPYC-Genoa-4vcpu", Platform: SNP, SNPPins: refvalues.SNPPins{Measurement: r(0x12), Policy: 0x30000}, Binds: Bindable},
			{Name: "td-single-pass", Platform: TDX, MRTD: r(0x21), RTMR: [4][]byte{r(0x30), r(0x31), r(0x32), nil}, Binds: Bindable,
				XFAM: []byte{0xe7, 0x42, 0x06, 0, 0, 0, 0, 0}, KernelEvent: r(0x41), LoadOptionsEvent: r(0x42)},
		},
		GPU: &GPU{VBIOS: []string{"96.00.5E.00.01"}, Driver: []string{"550.144.03"}},
	}
}

func hex48(b byte) string { return strings.Repeat(hexs([]byte{b}), 48) }

// ear builds an EAR-shaped input as Trustee's KBS gives resource policies.
func ear(cpu map[string]any, cpuStatus string, gpus ...map[string]any) map[string]any {
	submods := map[string]any{"cpu0": map[string]any{"ear.status": cpuStatus, "ear.veraison.annotated-evidence": cpu}}
	for i, g := range gpus {
		submods["gpu"+string(rune('0'+i))] = g
	}
	return map[string]any{"submods": submods}
}

func snpEvidence(m string, debug bool) map[string]any {
	return map[string]any{"snp": map[string]any{"measurement": m, "policy_debug_allowed": debug}}
}

func tdxEvidence(mrtd string, rtmr1 string, debug bool) map[string]any {
	return map[string]any{"tdx": map[string]any{
		"quote":         map[string]any{"body": map[string]any{"mr_td": mrtd, "rtmr_0": hex48(0x30), "rtmr_1": rtmr1, "rtmr_2": hex48(0x32), "rtmr_3": hex48(0)}},
		"td_attributes": map[string]any{"debug": debug},
	}}
}

func gpu(status, vbios, driver string) map[string]any {
	return map[string]any{"ear.status": status, "ear.veraison.annotated-evidence": map[string]any{
		"nvidia": map[string]any{"x-nvidia-gpu-vbios-version": vbios, "x-nvidia-gpu-driver-version": driver}}}
}

func gpuLocal(vbios, driver string) map[string]any {
	return map[string]any{"ear.status": "affirming", "ear.veraison.annotated-evidence": map[string]any{
		"nvidia": map[string]any{"config": map[string]any{"vbios_version": vbios, "driver_version": driver}}}}
}

// TestTrusteeResourcePolicyWithOPA evaluates the generated Rego with OPA:
// EAR input matching the release is allowed; a wrong measurement, debug
// enabled, a wrong GPU version, a non-affirming status or another resource
// are denied.
func TestTrusteeResourcePolicyWithOPA(t *testing.T) {
	v := testValues()
	src, err := TrusteeResourcePolicy(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := gpu("affirming", "96.00.5E.00.01", "550.144.03")
	for _, c := range []struct {
		name     string
		input    map[string]any
		resource string
		want     bool
	}{
		{"snp Milan", ear(snpEvidence(hex48(0x11), false), "affirming", good), "default/model/demo", true},
		{"snp Genoa, two GPUs", ear(snpEvidence(hex48(0x12), false), "affirming", good, good), "default/model/demo", true},
		{"tdx", ear(tdxEvidence(hex48(0x21), hex48(0x31), false), "affirming", good), "default/model/demo", true},
		{"local GPU verifier (lowercase)", ear(snpEvidence(hex48(0x11), false), "affirming", gpuLocal("96.00.5e.00.01", "550.144.03")), "default/model/demo", true},
		{"wrong SNP measurement", ear(snpEvidence(hex48(0x13), false), "affirming", good), "default/model/demo", false},
		{"SNP debug allowed", ear(snpEvidence(hex48(0x11), true), "affirming", good), "default/model/demo", false},
		{"TDX RTMR1 of no configuration", ear(tdxEvidence(hex48(0x21), hex48(0x99), false), "affirming", good), "default/model/demo", false},
		{"TDX debug", ear(tdxEvidence(hex48(0x21), hex48(0x31), true), "affirming", good), "default/model/demo", false},
		{"wrong VBIOS", ear(snpEvidence(hex48(0x11), false), "affirming", gpu("affirming", "96.00.5E.00.02", "550.144.03")), "default/model/demo", false},
		{"wrong driver", ear(snpEvidence(hex48(0x11), false), "affirming", gpu("affirming", "96.00.5E.00.01", "535.86.09")), "default/model/demo", false},
		{"one of two GPUs wrong", ear(snpEvidence(hex48(0x11), false), "affirming", good, gpu("affirming", "96.00.5E.00.02", "550.144.03")), "default/model/demo", false},
		{"GPU not affirming", ear(snpEvidence(hex48(0x11), false), "affirming", gpu("contraindicated", "96.00.5E.00.01", "550.144.03")), "default/model/demo", false},
		{"no GPU", ear(snpEvidence(hex48(0x11), false), "affirming"), "default/model/demo", false},
		{"CPU not affirming", ear(snpEvidence(hex48(0x11), false), "warning", good), "default/model/demo", false},
		{"another resource", ear(snpEvidence(hex48(0x11), false), "affirming", good), "default/model/other", false},
	} {
		for _, shape := range kbsShapes {
			got := evalAllow(t, src, c.input, shape.data(c.resource))
			if got != c.want {
				t.Errorf("%s, %s: allow = %v, want %v", c.name, shape.name, got, c.want)
			}
		}
	}
	// Requests that are not for the resource plugin's path.
	in := ear(snpEvidence(hex48(0x11), false), "affirming", good)
	for name, data := range map[string]map[string]any{
		"v0.17+ another plugin":      {"plugin": "nebula-ca", "resource-path": []any{"default", "model", "demo"}, "query": map[string]any{}},
		"v0.17+ a longer path":       {"plugin": "resource", "resource-path": []any{"default", "model", "demo", "x"}, "query": map[string]any{}},
		"v0.17+ a prefix":            {"plugin": "resource", "resource-path": []any{"default", "model"}, "query": map[string]any{}},
		"v0.11-v0.16 another plugin": {"resource-path": "nebula-ca/default/model/demo"},
		"array without a plugin":     {"resource-path": []any{"default", "model", "demo"}},
	} {
		if evalAllow(t, src, in, data) {
			t.Errorf("%s: allowed", name)
		}
	}
	// Without GPU references, no GPU is needed.
	v.GPU = nil
	src, err = TrusteeResourcePolicy(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !evalAllow(t, src, ear(snpEvidence(hex48(0x11), false), "affirming"), kbsShapes[0].data("default/model/demo")) {
		t.Error("a release without GPUs denies a CPU-only requester")
	}
}

// kbsShapes are the policy data Trustee's KBS gives a resource policy for
// GET /kbs/v0/resource/REPO/TYPE/TAG, per release line. Each is built as
// kbs/src/api_server.rs builds it at that release:
//   - v0.17.0 to v0.21.0 (tag v0.21.0 = 258ea4acb7b9bd865fce5c63a539f2120dba8298;
//     commits 03c30c8a and 51e0f050): json!({"plugin": plugin,
//     "resource-path": resource_path, "query": query}) with resource_path
//     the path segments after the plugin name;
//   - v0.11.0 to v0.16.0 (tag v0.16.0 = 6d1dcfbadad2c67c0972d242156b4d5701a3e4ff):
//     endpoint = format!("{base_path}{additional_path}"), passed as
//     {"resource-path": endpoint} by kbs/src/policy_engine/opa/mod.rs;
//   - v0.10.0 and earlier (tag v0.10.0 = 1eaeb5f6ca9f73ccdec7331c4675ab4d1b55c533,
//     kbs/src/http/resource.rs): format!("{}/{}/{}", repository, type, tag).
var kbsShapes = []struct {
	name string
	data func(path string) map[string]any
}{
	{"Trustee v0.17+", func(p string) map[string]any {
		var segs []any
		for _, s := range strings.Split(p, "/") {
			segs = append(segs, s)
		}
		return map[string]any{"plugin": "resource", "resource-path": segs, "query": map[string]any{}}
	}},
	{"Trustee v0.11-v0.16", func(p string) map[string]any { return map[string]any{"resource-path": "resource/" + p} }},
	{"Trustee v0.10", func(p string) map[string]any { return map[string]any{"resource-path": p} }},
}

func evalAllow(t *testing.T, src []byte, input map[string]any, data map[string]any) bool {
	t.Helper()
	rs, err := rego.New(
		rego.Query("data.policy.allow"),
		rego.Module("policy.rego", string(src)),
		rego.Input(input),
		rego.Data(data),
	).Eval(context.Background())
	if err != nil {
		t.Fatalf("OPA: %v\n%s", err, src)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		t.Fatalf("OPA result %v", rs)
	}
	return rs[0].Expressions[0].Value == true
}

func TestRVPSMessage(t *testing.T) {
	b, err := RVPSMessage(testValues())
	if err != nil {
		t.Fatal(err)
	}
	var msg struct{ Version, Type, Payload string }
	if err := json.Unmarshal(b, &msg); err != nil || msg.Version != "0.1.0" || msg.Type != "sample" {
		t.Fatalf("%s", b)
	}
	raw, _ := base64.StdEncoding.DecodeString(msg.Payload)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	str := func(k string, i int) any {
		l, _ := m[k].([]any)
		if i >= len(l) {
			return nil
		}
		return l[i]
	}
	if len(m["snp_launch_measurement"].([]any)) != 2 || str("mr_td", 0) != hex48(0x21) || str("rtmr_1", 0) != hex48(0x31) || m["rtmr_3"] != nil || str("allowed_vbios_versions", 0) != "96.00.5E.00.01" {
		t.Fatalf("payload %v", m)
	}
	// No minimum TCB: every SVN 0-255 is accepted.
	if l := m["snp_bootloader"].([]any); len(l) != 256 || l[0] != 0.0 || l[255] != 255.0 {
		t.Fatalf("snp_bootloader %v", m["snp_bootloader"])
	}
	if str("xfam", 0) != "e742060000000000" || m["tdvfkernel"] != hex48(0x41) || m["tdvfkernelparams"] != hex48(0x42) {
		t.Fatalf("TDX configuration values %v %v %v", m["xfam"], m["tdvfkernel"], m["tdvfkernelparams"])
	}

	// Minimums: the union over configurations (the lowest), per SVN.
	v := testValues()
	v.Launches[0].MinTCB = &TCB{Bootloader: 3, TEE: 0, SNP: 8, Microcode: 115}
	v.Launches[1].MinTCB = &TCB{Bootloader: 4, TEE: 1, SNP: 22, Microcode: 213}
	// Two TDX configurations with different kernels: no single tdvfkernel.
	td2 := v.Launches[2]
	td2.Name, td2.KernelEvent = "td-other-kernel", bytes.Repeat([]byte{0x43}, 48)
	v.Launches = append(v.Launches, td2)
	b, _ = RVPSMessage(v)
	json.Unmarshal(b, &msg)
	raw, _ = base64.StdEncoding.DecodeString(msg.Payload)
	m = nil
	json.Unmarshal(raw, &m)
	if l := m["snp_snp_svn"].([]any); len(l) != 256-8 || l[0] != 8.0 {
		t.Fatalf("snp_snp_svn %v", l)
	}
	if l := m["snp_microcode"].([]any); l[0] != 115.0 {
		t.Fatalf("snp_microcode %v", l)
	}
	if _, ok := m["tdvfkernel"]; ok {
		t.Error("tdvfkernel written though the configurations differ")
	}
	if m["tdvfkernelparams"] != hex48(0x42) {
		t.Error("tdvfkernelparams dropped though every configuration has the same")
	}
}

func TestBindings(t *testing.T) {
	v := testValues()
	v.Launches[0].Binds = []string{BindsFirmware}
	v.Launches[0].Why = map[string]string{BindsKernel: "the firmware has no SNP kernel-hashes section"}
	unbound, err := CheckBindings(v)
	var ue *UnboundError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "qemu-EPYC-Milan-4vcpu leave kernel, initrd, cmdline, rootfs unbound: the firmware has no SNP kernel-hashes section") {
		t.Fatalf("%v", err)
	}
	v.AllowUnbound = true
	if unbound2, err := CheckBindings(v); err != nil || len(unbound2["qemu-EPYC-Milan-4vcpu"]) != 4 || len(unbound) != 1 {
		t.Fatalf("%v %v", err, unbound2)
	}
	src, _ := TrusteeResourcePolicy(v, unbound)
	if !bytes.Contains(src, []byte("WARNING: emitted with --allow-unbound")) {
		t.Fatal("the policy does not record --allow-unbound")
	}
}

func TestAzureAndITA(t *testing.T) {
	v := testValues()
	if _, err := AzureSKRPolicy(v, "http://x"); err == nil {
		t.Fatal("http authority accepted")
	}
	b, err := AzureSKRPolicy(v, "https://shared.weu.attest.azure.net")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version string
		AnyOf   []struct {
			Authority string
			AllOf     []struct {
				Claim  string
				Equals any
			}
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Version != "1.0.0" || len(doc.AnyOf) != 3 {
		t.Fatalf("%v %s", err, b)
	}
	c := doc.AnyOf[0].AllOf
	if c[1].Claim != "x-ms-isolation-tee.x-ms-sevsnpvm-launchmeasurement" || c[1].Equals != hex48(0x11) || c[2].Equals != false {
		t.Fatalf("SNP claims %v", c)
	}
	if tdx := doc.AnyOf[2].AllOf; tdx[1].Claim != "tdx_mrtd" || len(tdx) != 6 {
		t.Fatalf("TDX claims %v", tdx)
	}
	ita, err := ITAKeyTransferPolicies(v)
	if err != nil || len(ita) != 1 {
		t.Fatal(err)
	}
	var ktp struct {
		AttestationType string `json:"attestation_type"`
		TDX             struct {
			Attributes map[string]any `json:"attributes"`
		} `json:"tdx"`
	}
	if err := json.Unmarshal(ita["td-single-pass"], &ktp); err != nil || ktp.AttestationType != "TDX" || ktp.TDX.Attributes["rtmr1"] != hex48(0x31) || ktp.TDX.Attributes["rtmr3"] != nil {
		t.Fatalf("%v %+v", err, ktp)
	}
}

// TestTrusteeHostDataShapes: a configuration with HOST_DATA is allowed in
// the annotated-evidence shape current Trustee gives the resource policy
// and in the older one. Trustee's SEV-SNP verifier reports HOST_DATA as
// the claim init_data; from v0.17.0 the EAR broker's transform_claims
// (confidential-containers/trustee attestation-service/src/token/ear_broker.rs,
// commit 95b366c5150118b1b763a8078900e51edc3a981c: `if let Some(init_data)
// = claims_map.remove("init_data") { output_claims.insert("init_data", …);
// output_claims.insert("init_data_claims", …) }`, the rest under the TEE's
// name) moves it to the top of the annotated evidence, beside
// init_data_claims; before, it stayed in ev.snp. The Rego that compared
// ev.snp.init_data denied the matching VM on current Trustee. TDX's
// init_data (MR_CONFIG_ID) is moved the same way; cvmkit's TDX policies do
// not pin it, and their match is unchanged in the new shape.
func TestTrusteeHostDataShapes(t *testing.T) {
	host := strings.Repeat("ab", 32)
	r := func(b byte) []byte { return bytes.Repeat([]byte{b}, 48) }
	v := &Values{Release: "r@1", Resource: "default/model/demo", Launches: []Launch{
		{Name: "snp-host", Platform: SNP, SNPPins: refvalues.SNPPins{Measurement: r(0x11), Policy: 0x30000, HostData: bytes.Repeat([]byte{0xab}, 32)}, Binds: Bindable},
		{Name: "tdx", Platform: TDX, MRTD: r(0x21), RTMR: [4][]byte{nil, r(0x31)}, Binds: Bindable},
	}}
	src, err := TrusteeResourcePolicy(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	current := func(hostData string) map[string]any { // v0.17.0 and later
		return map[string]any{"init_data": hostData, "init_data_claims": "", "report_data": hex48(0), "runtime_data_claims": "",
			"snp": map[string]any{"measurement": hex48(0x11), "policy_debug_allowed": false}}
	}
	older := func(hostData string) map[string]any {
		return map[string]any{"snp": map[string]any{"measurement": hex48(0x11), "policy_debug_allowed": false, "init_data": hostData}}
	}
	tdxCurrent := tdxEvidence(hex48(0x21), hex48(0x31), false)
	tdxCurrent["init_data"] = hex48(0)
	for _, c := range []struct {
		name string
		ev   map[string]any
		want bool
	}{
		{"Trustee v0.17+ shape, matching HOST_DATA", current(host), true},
		{"older shape, matching HOST_DATA", older(host), true},
		{"Trustee v0.17+ shape, other HOST_DATA", current(strings.Repeat("cd", 32)), false},
		{"older shape, other HOST_DATA", older(strings.Repeat("cd", 32)), false},
		{"no HOST_DATA at all", snpEvidence(hex48(0x11), false), false},
		{"TDX, Trustee v0.17+ shape (init_data at the top)", tdxCurrent, true},
	} {
		if got := evalAllow(t, src, ear(c.ev, "affirming"), kbsShapes[0].data("default/model/demo")); got != c.want {
			t.Errorf("%s: allow = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestTrusteePolicyRequest: resource-policy.json is what the KBS admin API
// takes, the Rego in unpadded base64url (Trustee decodes it with
// URL_SAFE_NO_PAD, kbs/src/policy_engine/opa/mod.rs at 03c30c8a).
func TestTrusteePolicyRequest(t *testing.T) {
	for _, rego := range [][]byte{[]byte("package policy\n"), []byte("package policy\n\n"), []byte("a?>~")} {
		var body struct{ Policy string }
		if err := json.Unmarshal(TrusteePolicyRequest(rego), &body); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(body.Policy, "=+/") {
			t.Errorf("%q: not unpadded base64url: %s", rego, body.Policy)
		}
		got, err := base64.RawURLEncoding.Strict().DecodeString(body.Policy)
		if err != nil || string(got) != string(rego) {
			t.Errorf("%q: decodes to %q, %v", rego, got, err)
		}
	}
}
