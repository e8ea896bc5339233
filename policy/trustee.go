package policy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Trustee outputs (confidential-containers/trustee): a reference-value
// message for its RVPS and a KBS resource policy.
//
// The RVPS message is the "sample" type: {"version":"0.1.0","type":"sample",
// "payload": base64(JSON map name → value)}, with the names Trustee's
// default EAR CPU policy looks up (attestation-service/src/ear_token/
// ear_default_policy_cpu.rego, v0.14 to v0.21), so that a matching TEE is
// appraised "affirming":
//
//   - SNP executables: snp_launch_measurement; hardware: snp_bootloader,
//     snp_tee_svn, snp_snp_svn, snp_microcode (each the list of accepted
//     SVNs, from the configuration's minimum to 255, because the policy
//     tests them with `in`);
//   - TDX hardware: mr_td; executables: rtmr_1, rtmr_2, and tdvfkernel /
//     tdvfkernelparams (the kernel and LoadOptions event digests, compared
//     with == so written only when every configuration has the same one);
//     configuration: xfam (hex of the quote's little-endian field);
//   - rtmr_0, rtmr_3, allowed_vbios_versions, allowed_driver_versions.
//
// The RVPS values are global, so each list is the union over the release's
// configurations; the resource policy then checks each configuration's
// values together (and its own minimum TCB).
//
// The resource policy is Rego evaluated by the KBS on the EAR token of the
// requester: it releases exactly the model's data key when the CPU
// submodule's appraisal is affirming and its annotated evidence matches one
// configuration of this release (all values of that configuration
// together, debug off), and, when the release has GPU references, every
// GPU submodule is affirming with allowed VBIOS and driver versions.
//
// The resource the KBS asks about comes in three shapes, all accepted
// (kbs/src/api_server.rs): since v0.17.0 (commit 03c30c8a and 51e0f050) the
// policy data is {"plugin": "resource", "resource-path": ["REPO", "TYPE",
// "TAG"], "query": {}}; v0.11 to v0.16 pass {"resource-path":
// "resource/REPO/TYPE/TAG"} (the plugin name and its path); v0.10 and
// earlier {"resource-path": "REPO/TYPE/TAG"}.

// RVPSMessage returns the RVPS "sample" reference-value message.
func RVPSMessage(v *Values) ([]byte, error) {
	m := map[string]any{}
	var snp [][]byte
	var mrtd, xfam, kernelEv, optsEv [][]byte
	var rtmr [4][][]byte
	var minTCB *TCB
	nTDX := 0
	for _, l := range v.Launches {
		switch l.Platform {
		case SNP:
			snp = append(snp, l.Measurement)
			t := TCB{}
			if l.MinTCB != nil {
				t = *l.MinTCB
			}
			if minTCB == nil {
				minTCB = &t
			}
			minTCB.Bootloader, minTCB.TEE = min(minTCB.Bootloader, t.Bootloader), min(minTCB.TEE, t.TEE)
			minTCB.SNP, minTCB.Microcode = min(minTCB.SNP, t.SNP), min(minTCB.Microcode, t.Microcode)
		case TDX:
			nTDX++
			mrtd = append(mrtd, l.MRTD)
			for i, r := range l.RTMR {
				rtmr[i] = append(rtmr[i], r)
			}
			xfam = append(xfam, l.XFAM)
			kernelEv, optsEv = append(kernelEv, l.KernelEvent), append(optsEv, l.LoadOptionsEvent)
		}
	}
	if len(snp) > 0 {
		m["snp_launch_measurement"] = unique(snp)
		m["snp_bootloader"] = svnsFrom(minTCB.Bootloader)
		m["snp_tee_svn"] = svnsFrom(minTCB.TEE)
		m["snp_snp_svn"] = svnsFrom(minTCB.SNP)
		m["snp_microcode"] = svnsFrom(minTCB.Microcode)
	}
	if len(mrtd) > 0 {
		m["mr_td"] = unique(mrtd)
		for i := range rtmr {
			if u := unique(rtmr[i]); len(u) > 0 {
				m["rtmr_"+strconv.Itoa(i)] = u
			}
		}
		if u := unique(xfam); len(u) > 0 {
			m["xfam"] = u
		}
		// Compared with ==: one value, and only when every TDX
		// configuration predicts that same event.
		for name, evs := range map[string][][]byte{"tdvfkernel": kernelEv, "tdvfkernelparams": optsEv} {
			if u := unique(evs); len(u) == 1 && countNonNil(evs) == nTDX {
				m[name] = u[0]
			}
		}
	}
	if v.GPU != nil {
		m["allowed_vbios_versions"] = sortedCopy(v.GPU.VBIOS)
		m["allowed_driver_versions"] = sortedCopy(v.GPU.Driver)
	}
	payload, err := json.Marshal(m) // map keys sorted
	if err != nil {
		return nil, err
	}
	return marshalIndent(map[string]string{
		"version": "0.1.0",
		"type":    "sample",
		"payload": base64.StdEncoding.EncodeToString(payload),
	})
}

// svnsFrom lists the SVNs from least to 255: the values Trustee's `in`
// test accepts for a minimum.
func svnsFrom(least uint8) []int {
	out := make([]int, 0, 256-int(least))
	for s := int(least); s <= 255; s++ {
		out = append(out, s)
	}
	return out
}

func countNonNil(l [][]byte) int {
	n := 0
	for _, b := range l {
		if b != nil {
			n++
		}
	}
	return n
}

func sortedCopy(l []string) []string {
	out := append([]string{}, l...)
	sort.Strings(out)
	return out
}

func marshalIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func regoString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func regoSet(vals []string) string {
	if len(vals) == 0 {
		return "set()"
	}
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = regoString(v)
	}
	return "{" + strings.Join(q, ", ") + "}"
}

// TrusteeResourcePolicy returns the KBS resource policy (Rego).
func TrusteeResourcePolicy(v *Values, unbound map[string][]string) ([]byte, error) {
	if v.Resource == "" {
		return nil, fmt.Errorf("trustee: no resource path for the data key")
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# KBS resource policy for release %s, generated by cvmkit (docs/policy.md).
# Releases %s only to a requester whose EAR appraisal is affirming and whose
# launch values are exactly one configuration of this release.
`, v.Release, v.Resource)
	if len(unbound) > 0 {
		names := make([]string, 0, len(unbound))
		for n := range unbound {
			names = append(names, n)
		}
		sort.Strings(names)
		b.WriteString("#\n# WARNING: emitted with --allow-unbound. These configurations do not bind:\n")
		for _, n := range names {
			fmt.Fprintf(&b, "#   %s: %s\n", n, strings.Join(unbound[n], ", "))
		}
	}
	b.WriteString(`package policy

import rego.v1

default allow := false

resource_path := ` + regoString(v.Resource) + `

# The KBS's policy data for the requested resource, in each shape Trustee
# has used (kbs/src/api_server.rs): v0.17.0 and later (commit 03c30c8a) an
# array after the plugin name; v0.11-v0.16 one string with the plugin
# name; v0.10 and earlier the bare path.
requested if {
	data.plugin == "resource"
	concat("/", data["resource-path"]) == resource_path
}

requested if {
	not data.plugin
	data["resource-path"] == concat("/", ["resource", resource_path])
}

requested if {
	not data.plugin
	data["resource-path"] == resource_path
}

allow if {
	requested
	input.submods.cpu0["ear.status"] == "affirming"
	cpu_evidence_matches(input.submods.cpu0["ear.veraison.annotated-evidence"])
	gpus_ok
}
`)
	hostData := false
	for _, l := range v.Launches {
		hostData = hostData || (l.Platform == SNP && l.HostData != nil)
	}
	if hostData {
		b.WriteString(`
# HOST_DATA, which Trustee's SEV-SNP verifier reports as init_data: from
# v0.17.0 on, the EAR broker's transform_claims
# (attestation-service/src/token/ear_broker.rs) moves init_data out of the
# TEE's object to the top of the annotated evidence; before, it stayed in
# ev.snp.
snp_host_data(ev, want) if ev.init_data == want

snp_host_data(ev, want) if ev.snp.init_data == want
`)
	}
	for _, l := range v.Launches {
		fmt.Fprintf(&b, "\n# %s (%s)\ncpu_evidence_matches(ev) if {\n", l.Name, l.Platform)
		switch l.Platform {
		case SNP:
			fmt.Fprintf(&b, "\tev.snp.measurement == %s\n", regoString(hexs(l.Measurement)))
			b.WriteString("\tev.snp.policy_debug_allowed == false\n")
			if l.HostData != nil {
				fmt.Fprintf(&b, "\tsnp_host_data(ev, %s)\n", regoString(hexs(l.HostData)))
			}
			if t := l.MinTCB; t != nil && *t != (TCB{}) {
				fmt.Fprintf(&b, "\tev.snp.reported_tcb_bootloader >= %d\n\tev.snp.reported_tcb_tee >= %d\n\tev.snp.reported_tcb_snp >= %d\n\tev.snp.reported_tcb_microcode >= %d\n",
					t.Bootloader, t.TEE, t.SNP, t.Microcode)
			}
		case TDX:
			fmt.Fprintf(&b, "\tev.tdx.quote.body.mr_td == %s\n", regoString(hexs(l.MRTD)))
			for i, r := range l.RTMR {
				if r != nil {
					fmt.Fprintf(&b, "\tev.tdx.quote.body.rtmr_%d == %s\n", i, regoString(hexs(r)))
				}
			}
			b.WriteString("\tev.tdx.td_attributes.debug == false\n")
		default:
			return nil, fmt.Errorf("trustee: configuration %s has unknown platform %q", l.Name, l.Platform)
		}
		b.WriteString("}\n")
	}
	if v.GPU == nil {
		b.WriteString("\n# The release has no GPU reference values.\ngpus_ok := true\n")
		return []byte(b.String()), nil
	}
	lower := make([]string, len(v.GPU.VBIOS))
	for i, s := range v.GPU.VBIOS {
		lower[i] = strings.ToLower(s)
	}
	sort.Strings(lower)
	b.WriteString(`
# GPUs: every GPU submodule affirming, VBIOS and driver versions allowed
# (NRAS claims use uppercase VBIOS versions, Trustee's local verifier
# lowercase; both are accepted).
allowed_vbios_versions := ` + regoSet(sortedCopy(v.GPU.VBIOS)) + `

allowed_vbios_versions_lowercase := ` + regoSet(lower) + `

allowed_driver_versions := ` + regoSet(sortedCopy(v.GPU.Driver)) + `

gpus := [g | some k, g in input.submods; startswith(k, "gpu")]

default gpus_ok := false

gpus_ok if {
	count(gpus) > 0
	every g in gpus {
		g["ear.status"] == "affirming"
		gpu_versions_allowed(g["ear.veraison.annotated-evidence"])
	}
}

gpu_versions_allowed(ev) if {
	ev.nvidia["x-nvidia-gpu-vbios-version"] in allowed_vbios_versions
	ev.nvidia["x-nvidia-gpu-driver-version"] in allowed_driver_versions
}

gpu_versions_allowed(ev) if {
	ev.nvidia.config.vbios_version in allowed_vbios_versions_lowercase
	ev.nvidia.config.driver_version in allowed_driver_versions
}
`)
	return []byte(b.String()), nil
}

// TrusteePolicyRequest is the body of the KBS admin API's POST
// /kbs/v0/resource-policy for a Rego policy: {"policy": …} with the Rego
// in unpadded base64url, the only form the KBS decodes
// (confidential-containers/trustee kbs/src/policy_engine/opa/mod.rs,
// commit 03c30c8a: URL_SAFE_NO_PAD.decode(policy); a padded or standard
// base64 body is refused).
func TrusteePolicyRequest(rego []byte) []byte {
	b, _ := json.Marshal(map[string]string{"policy": base64.RawURLEncoding.EncodeToString(rego)})
	return append(b, '\n')
}
