package policy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"
)

// earStatus evaluates Trustee's default EAR CPU policy (testdata/trustee,
// v0.21.0) on the claims of one TEE, with query_reference_value answering
// from the payload of the RVPS message cvmkit emitted, and returns the
// appraisal status as Trustee's broker derives it from the trust vector
// (AR4SI tiers: 0 none, 2-31 affirming, 32-95 warning, 96-127
// contraindicated; the status is the worst tier).
func earStatus(t *testing.T, rvps []byte, claims map[string]any) (string, map[string]any) {
	t.Helper()
	src, err := os.ReadFile("testdata/trustee/ear_default_policy_cpu.rego")
	if err != nil {
		t.Fatal(err)
	}
	var msg struct{ Payload string }
	if err := json.Unmarshal(rvps, &msg); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(msg.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var refs map[string]any
	if err := json.Unmarshal(raw, &refs); err != nil {
		t.Fatal(err)
	}
	query := rego.Function1(&rego.Function{Name: "query_reference_value", Decl: types.NewFunction(types.Args(types.S), types.A)},
		func(_ rego.BuiltinContext, id *ast.Term) (*ast.Term, error) {
			name, ok := id.Value.(ast.String)
			if !ok {
				return nil, nil
			}
			v, ok := refs[string(name)]
			if !ok {
				return ast.NullTerm(), nil // Trustee's RVPS answers None
			}
			val, err := ast.InterfaceToValue(v)
			if err != nil {
				return nil, err
			}
			return ast.NewTerm(val), nil
		})
	rs, err := rego.New(rego.Query("data.policy.trust_claims"), rego.Module("ear_default_policy_cpu.rego", string(src)), query, rego.Input(claims)).Eval(context.Background())
	if err != nil {
		t.Fatalf("OPA: %v", err)
	}
	if len(rs) != 1 {
		t.Fatalf("no trust claims: %v", rs)
	}
	vector := rs[0].Expressions[0].Value.(map[string]any)
	tier := 0 // none < affirming < warning < contraindicated
	for _, v := range vector {
		n, _ := v.(json.Number).Int64()
		if n < 0 {
			n = -n
		}
		switch {
		case n >= 96:
			tier = max(tier, 3)
		case n >= 32:
			tier = max(tier, 2)
		case n >= 1:
			tier = max(tier, 1)
		}
	}
	return []string{"none", "affirming", "warning", "contraindicated"}[tier], vector
}

// snpClaims are the claims Trustee's SNP verifier derives from a report
// (deps/verifier/src/snp/mod.rs parse_tee_evidence, v0.21.0).
func snpClaims(measurement string, tcb TCB) map[string]any {
	return map[string]any{"snp": map[string]any{
		"policy_abi_major": 0, "policy_abi_minor": 0, "policy_smt_allowed": true, "policy_migrate_ma": false,
		"policy_debug_allowed": false, "policy_single_socket": false,
		"reported_tcb_bootloader": tcb.Bootloader, "reported_tcb_tee": tcb.TEE, "reported_tcb_snp": tcb.SNP, "reported_tcb_microcode": tcb.Microcode,
		"platform_tsme_enabled": false, "platform_smt_enabled": true,
		"measurement": measurement, "report_data": hex48(0), "init_data": hex48(0)[:64],
	}}
}

// tdxClaims are the claims Trustee's TDX verifier derives from a quote and
// its CC event log (deps/verifier/src/tdx/claims.rs, deps/eventlog).
func tdxClaims(mrtd, rtmr1, rtmr2, xfam, kernelEvent, optsEvent string) map[string]any {
	return map[string]any{"tdx": map[string]any{
		"quote": map[string]any{
			"header": map[string]any{"tee_type": "81000000", "vendor_id": "939a7233f79c4ca9940a0db3957f0607"},
			"body":   map[string]any{"mr_td": mrtd, "rtmr_0": hex48(0x30), "rtmr_1": rtmr1, "rtmr_2": rtmr2, "rtmr_3": hex48(0), "xfam": xfam},
		},
		"td_attributes":                map[string]any{"debug": false},
		"tcb_status":                   "UpToDate",
		"collateral_expiration_status": "0",
		"uefi_event_logs": []any{
			map[string]any{"type_name": "EV_EFI_BOOT_SERVICES_APPLICATION", "details": map[string]any{"device_paths": []any{"PciRoot(0x0)", "File(kernel)"}},
				"digests": []any{map[string]any{"alg": "SHA-384", "digest": kernelEvent}}},
			map[string]any{"type_name": "EV_EVENT_TAG", "details": map[string]any{"string": "LOADED_IMAGE::LoadOptions"},
				"digests": []any{map[string]any{"alg": "SHA-384", "digest": optsEvent}}},
		},
	}}
}

// TestTrusteeDefaultEARPolicy: with the RVPS message cvmkit emits,
// Trustee's default EAR CPU policy appraises a TEE that matches a
// configuration of the release as affirming in every claim it judges, and
// one whose measurement, TCB or configuration differs as not affirming;
// the resource policy then releases the key only for the affirming one.
func TestTrusteeDefaultEARPolicy(t *testing.T) {
	v := testValues()
	v.GPU = nil
	v.Launches[0].MinTCB = &TCB{Bootloader: 4, TEE: 0, SNP: 22, Microcode: 213}
	v.Launches[1].MinTCB = &TCB{Bootloader: 4, TEE: 0, SNP: 22, Microcode: 213}
	rvps, err := RVPSMessage(v)
	if err != nil {
		t.Fatal(err)
	}
	resPolicy, err := TrusteeResourcePolicy(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	current := TCB{Bootloader: 9, TEE: 0, SNP: 23, Microcode: 213}
	xfam := "e742060000000000"
	for _, c := range []struct {
		name   string
		claims map[string]any
		want   string
		// claim the policy must set to its affirming value
		affirmed []string
	}{
		{"SNP, matching", snpClaims(hex48(0x11), current), "affirming", []string{"executables", "hardware", "configuration"}},
		{"SNP, other measurement", snpClaims(hex48(0x13), current), "warning", nil},
		{"SNP, firmware older than the minimum", snpClaims(hex48(0x11), TCB{Bootloader: 3, SNP: 23, Microcode: 213}), "contraindicated", nil},
		{"TDX, matching", tdxClaims(hex48(0x21), hex48(0x31), hex48(0x32), xfam, hex48(0x41), hex48(0x42)), "affirming", []string{"executables", "hardware", "configuration"}},
		{"TDX, other RTMR1", tdxClaims(hex48(0x21), hex48(0x99), hex48(0x32), xfam, hex48(0x41), hex48(0x42)), "warning", nil},
		{"TDX, other MRTD", tdxClaims(hex48(0x22), hex48(0x31), hex48(0x32), xfam, hex48(0x41), hex48(0x42)), "contraindicated", nil},
		{"TDX, other XFAM", tdxClaims(hex48(0x21), hex48(0x31), hex48(0x32), "e700000000000000", hex48(0x41), hex48(0x42)), "warning", nil},
	} {
		status, vector := earStatus(t, rvps, c.claims)
		if status != c.want {
			t.Errorf("%s: EAR status %s, want %s (trust vector %v)", c.name, status, c.want, vector)
		}
		for _, k := range c.affirmed {
			if n, _ := vector[k].(json.Number).Int64(); n < 2 || n > 31 {
				t.Errorf("%s: %s = %v, not affirming", c.name, k, vector[k])
			}
		}
		// The KBS then evaluates the resource policy on the EAR token.
		cpu, _ := c.claims["snp"]
		if cpu == nil {
			cpu = c.claims["tdx"]
		}
		key := "snp"
		if _, ok := c.claims["tdx"]; ok {
			key = "tdx"
		}
		token := ear(map[string]any{key: cpu}, status)
		wantAllow := c.want == "affirming"
		if got := evalAllow(t, resPolicy, token, kbsShapes[0].data(v.Resource)); got != wantAllow {
			t.Errorf("%s: resource policy allow = %v, want %v", c.name, got, wantAllow)
		}
	}

	// A configuration's own minimum is the resource policy's to enforce
	// (the RVPS lists are the union over configurations): Genoa's minimum
	// is higher than Milan's here, so a Genoa report with Milan's minimum
	// is affirming for the EAR but gets no key.
	v.Launches[1].MinTCB = &TCB{Bootloader: 9, TEE: 0, SNP: 24, Microcode: 213}
	if resPolicy, err = TrusteeResourcePolicy(v, nil); err != nil {
		t.Fatal(err)
	}
	genoa := snpClaims(hex48(0x12), current)
	if evalAllow(t, resPolicy, ear(genoa, "affirming"), kbsShapes[0].data(v.Resource)) {
		t.Error("a report below its configuration's minimum TCB got the key")
	}
	genoa["snp"].(map[string]any)["reported_tcb_snp"] = 24
	if !evalAllow(t, resPolicy, ear(genoa, "affirming"), kbsShapes[0].data(v.Resource)) {
		t.Error("a report at its configuration's minimum TCB got no key")
	}

	// Without cvmkit's TCB values (the message before this release), the
	// hardware claim stays contraindicated: what the issue reproduced.
	var msg map[string]string
	json.Unmarshal(rvps, &msg)
	raw, _ := base64.StdEncoding.DecodeString(msg["payload"])
	var refs map[string]any
	json.Unmarshal(raw, &refs)
	for _, k := range []string{"snp_bootloader", "snp_tee_svn", "snp_snp_svn", "snp_microcode"} {
		delete(refs, k)
	}
	payload, _ := json.Marshal(refs)
	old, _ := json.Marshal(map[string]string{"version": "0.1.0", "type": "sample", "payload": base64.StdEncoding.EncodeToString(payload)})
	if status, vector := earStatus(t, old, snpClaims(hex48(0x11), current)); status != "contraindicated" || !bytes.Contains([]byte(vector["hardware"].(json.Number)), []byte("97")) {
		t.Errorf("without TCB values: %s %v", status, vector)
	}
}
