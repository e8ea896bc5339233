package policy

import (
	"fmt"
	"strings"
)

// AzureSKRPolicy returns an Azure Key Vault / Managed HSM Secure Key Release
// policy (policy grammar version 1.0.0) for the key holding the model's data
// key: released to a token from authority (a Microsoft Azure Attestation
// instance, https://<name>.<region>.attest.azure.net) whose claims match
// one configuration of the release: SEV-SNP launch measurement, HOST_DATA
// (when set) and debugging disabled; TDX MRTD and computed RTMRs.
//
// Claim names: SEV-SNP from Azure's guest attestation isolation claims
// (x-ms-isolation-tee.x-ms-sevsnpvm-*), TDX from its TDX EAT profile
// (tdx_mrtd, tdx_rtmr0..3, tdx_td_attributes_debug). On Azure confidential
// VMs the SNP launch measurement covers Microsoft's paravisor, not this
// release's kernel: docs/policy.md says when these claims apply.
func AzureSKRPolicy(v *Values, authority string) ([]byte, error) {
	if !strings.HasPrefix(authority, "https://") {
		return nil, fmt.Errorf("azure-skr: the attestation authority must be an https:// URL of a Microsoft Azure Attestation instance, got %q", authority)
	}
	type claim struct {
		Claim  string `json:"claim"`
		Equals any    `json:"equals"`
	}
	type branch struct {
		Authority string  `json:"authority"`
		AllOf     []claim `json:"allOf"`
	}
	var branches []branch
	for _, l := range v.Launches {
		br := branch{Authority: authority}
		switch l.Platform {
		case SNP:
			br.AllOf = append(br.AllOf,
				claim{"x-ms-isolation-tee.x-ms-attestation-type", "sevsnpvm"},
				claim{"x-ms-isolation-tee.x-ms-sevsnpvm-launchmeasurement", hexs(l.Measurement)},
				claim{"x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable", false})
			if l.HostData != nil {
				br.AllOf = append(br.AllOf, claim{"x-ms-isolation-tee.x-ms-sevsnpvm-hostdata", hexs(l.HostData)})
			}
		case TDX:
			br.AllOf = append(br.AllOf,
				claim{"x-ms-attestation-type", "tdxvm"},
				claim{"tdx_mrtd", hexs(l.MRTD)},
				claim{"tdx_td_attributes_debug", false})
			for i, r := range l.RTMR {
				if r != nil {
					br.AllOf = append(br.AllOf, claim{fmt.Sprintf("tdx_rtmr%d", i), hexs(r)})
				}
			}
		}
		branches = append(branches, br)
	}
	if len(branches) == 0 {
		return nil, fmt.Errorf("azure-skr: the release has no SEV-SNP or TDX configuration")
	}
	return marshalIndent(map[string]any{"version": "1.0.0", "anyOf": branches})
}

// ITAKeyTransferPolicies returns Intel Trust Authority KBS key-transfer
// policies for the TDX configurations, one per distinct RTMR set (the
// policy pins RTMRs as single values and MRTD as a list).
func ITAKeyTransferPolicies(v *Values) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, l := range v.Launches {
		if l.Platform != TDX {
			continue
		}
		attrs := map[string]any{
			"mrtd":                  []string{hexs(l.MRTD)},
			"enforce_tcb_upto_date": true,
		}
		for i, r := range l.RTMR {
			if r != nil {
				attrs[fmt.Sprintf("rtmr%d", i)] = hexs(r)
			}
		}
		doc := map[string]any{
			"attestation_type": "TDX",
			"tdx":              map[string]any{"attributes": attrs},
		}
		b, err := marshalIndent(doc)
		if err != nil {
			return nil, err
		}
		out[l.Name] = b
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ita: the release has no TDX configuration (Intel Trust Authority key transfer policies here are for TDX)")
	}
	return out, nil
}
