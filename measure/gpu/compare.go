package gpu

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/cvmkit/cvmkit/measure/gpu/spdm"
)

// Index comparison statuses.
const (
	StatusMatch    = "match"
	StatusMismatch = "mismatch"
	StatusSkipped  = "skipped"
	StatusMissing  = "missing"
)

// IndexResult is the comparison of one golden register with the report.
type IndexResult struct {
	RIMIndex  int    `json:"rim_index"`
	SPDMIndex int    `json:"spdm_index"`
	Source    Kind   `json:"source"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	// Alternative is which HashN matched (-1 when none did).
	Alternative int    `json:"alternative"`
	Runtime     string `json:"runtime,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// Comparison is the outcome of judging a verified report against reference
// values: version allow-lists first, then every active golden register of
// the RIMs whose versions the report carries (NVIDIA's §"measurement
// comparison": runtime block i+1 must equal one of RIM index i's
// alternatives, with the NVDEC0 rule for index 35).
type Comparison struct {
	// VBIOSAllowed / DriverAllowed say whether the report's version is in
	// the reference; nil when the reference holds no RIM of that kind for
	// this chip, so nothing could be judged.
	VBIOSAllowed  *bool `json:"vbios_allowed"`
	DriverAllowed *bool `json:"driver_allowed"`
	// VBIOSRIM / DriverRIM are the sha256 of the RIMs compared.
	VBIOSRIM  string        `json:"vbios_rim,omitempty"`
	DriverRIM string        `json:"driver_rim,omitempty"`
	Indices   []IndexResult `json:"measurements"`
	// Unchecked says what could not be judged and why.
	Unchecked []string `json:"unchecked,omitempty"`
}

// Mismatches returns the indices that did not match.
func (c *Comparison) Mismatches() []IndexResult {
	var out []IndexResult
	for _, r := range c.Indices {
		if r.Status == StatusMismatch || r.Status == StatusMissing {
			out = append(out, r)
		}
	}
	return out
}

// Compare judges a verified report against ref. A GPU reports one VBIOS
// (or NVSwitch BIOS) and one driver version; for each kind the candidates
// are the reference's RIMs for the report's chip with that version, and
// when NVIDIA re-issued a RIM under the same version the first candidate
// whose every register matches is used.
func Compare(v *VerifiedReport, ref *Reference) *Comparison {
	c := &Comparison{Indices: []IndexResult{}}
	firmwareKind := KindVBIOS
	if v.DriverVersion() == "" && strings.HasPrefix(v.Product, "LS") {
		firmwareKind = KindSwitchBIOS
	}
	fw := candidates(ref, v.Product, firmwareKind, v.VBIOSVersion(), &c.VBIOSAllowed)
	drv := []*RIMReference{}
	if firmwareKind == KindVBIOS {
		drv = candidates(ref, v.Product, KindDriver, v.DriverVersion(), &c.DriverAllowed)
	}
	if c.VBIOSAllowed == nil {
		c.Unchecked = append(c.Unchecked, fmt.Sprintf("%s version and registers: the reference has no %s RIM for %s", firmwareKind, firmwareKind, v.Product))
	}
	if c.DriverAllowed == nil && firmwareKind == KindVBIOS {
		c.Unchecked = append(c.Unchecked, fmt.Sprintf("driver version and registers: the reference has no driver RIM for %s", v.Product))
	}
	if !v.FWIDChecked {
		c.Unchecked = append(c.Unchecked, "FWID: the report carries no FWID field (drivers before 550 and NVSwitch firmware do not report it); the report is bound to its certificate by the signature only")
	}
	// Try every candidate pair; keep the first that matches everywhere,
	// else the one with the fewest mismatches.
	fwList, drvList := withNone(fw), withNone(drv)
	var best []IndexResult
	bestBad := -1
	for _, f := range fwList {
		for _, d := range drvList {
			res := compareRegisters(v, f, d)
			bad := 0
			for _, r := range res {
				if r.Status == StatusMismatch || r.Status == StatusMissing {
					bad++
				}
			}
			if bestBad < 0 || bad < bestBad {
				best, bestBad = res, bad
				c.VBIOSRIM, c.DriverRIM = shaOf(f), shaOf(d)
			}
		}
	}
	if best != nil {
		c.Indices = best
	}
	return c
}

func withNone(l []*RIMReference) []*RIMReference {
	if len(l) == 0 {
		return []*RIMReference{nil}
	}
	return l
}

func shaOf(r *RIMReference) string {
	if r == nil {
		return ""
	}
	return r.SHA256
}

// candidates returns the reference RIMs of kind for product with version,
// and sets *allowed (nil when the reference has no RIM of that kind for the
// product at all).
func candidates(ref *Reference, product string, kind Kind, version string, allowed **bool) []*RIMReference {
	var out []*RIMReference
	found := false
	for i := range ref.RIMs {
		r := &ref.RIMs[i]
		if r.Kind != kind || !strings.EqualFold(r.Product, product) {
			continue
		}
		found = true
		if version != "" && strings.EqualFold(r.Version, version) {
			out = append(out, r)
		}
	}
	if found {
		ok := len(out) > 0
		*allowed = &ok
	}
	return out
}

func compareRegisters(v *VerifiedReport, rims ...*RIMReference) []IndexResult {
	var out []IndexResult
	nvdec, haveNVDEC := v.NVDEC0Status()
	for _, r := range rims {
		if r == nil {
			continue
		}
		for _, m := range r.Measurements {
			res := IndexResult{RIMIndex: m.RIMIndex, SPDMIndex: m.RIMIndex + 1, Source: r.Kind, Name: m.Name, Alternative: -1}
			blk, ok := v.Block(m.RIMIndex + 1)
			switch {
			case m.RIMIndex == nvdec0Index && haveNVDEC && nvdec == spdm.NVDEC0Disabled:
				res.Status, res.Reason = StatusSkipped, "NVDEC0_STATUS is 0x55 (NVDEC0 disabled)"
				if ok {
					res.Runtime = hex.EncodeToString(blk.Value)
				}
			case !ok:
				res.Status, res.Reason = StatusMissing, fmt.Sprintf("the report has no measurement block %d", m.RIMIndex+1)
			default:
				res.Runtime = hex.EncodeToString(blk.Value)
				res.Status = StatusMismatch
				switch {
				case blk.ValueType&0x80 != 0:
					res.Reason = "the block is a raw bit stream, not a digest"
				case len(blk.Value) != m.Size:
					res.Reason = fmt.Sprintf("the block is %d bytes, the golden value %d", len(blk.Value), m.Size)
				default:
					for k, a := range m.Alternatives {
						if want, _ := hex.DecodeString(a); bytes.Equal(want, blk.Value) {
							res.Status, res.Alternative = StatusMatch, k
							break
						}
					}
					if res.Status == StatusMismatch {
						res.Reason = fmt.Sprintf("equals none of the %d golden value(s)", len(m.Alternatives))
					}
				}
			}
			out = append(out, res)
		}
	}
	sortIndices(out)
	return out
}

func sortIndices(l []IndexResult) {
	sort.SliceStable(l, func(i, j int) bool { return l[i].RIMIndex < l[j].RIMIndex })
}
