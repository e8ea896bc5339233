package evidence

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cvmkit/cvmkit/outcome"
	"github.com/cvmkit/cvmkit/refvalues"
)

// SNPReferences turns a release's SEV-SNP measurement documents (one per
// configuration, measurements/snp-NAME.json) into the references MatchSNP
// compares with; names are DOC.ENTRY as the launch recipes and sev-check
// policies name them.
//
// Every reference requires VMPL 0: in mode snp the release's OS runs at
// VMPL 0, and under an SVSM (snp:svsm) the SVSM, which holds the launch
// measurement's trust, requests its reports at VMPL 0 (AMD's SVSM
// specification, attestation protocol); a report from a component at
// VMPL 1–3 carries the same measurement but does not speak for the
// release.
func SNPReferences(r *refvalues.Release) ([]SNPReference, error) {
	vmpl0 := uint32(0)
	var refs []SNPReference
	for _, key := range sortedKeys(r.SNP, "snp-") {
		doc, f := r.SNP[key], refvalues.MeasurementsDir+"/"+key+".json"
		for _, e := range doc.Measurements {
			pins, err := doc.Pins(e, f)
			if err != nil {
				return nil, outcome.InputError(err)
			}
			policy := pins.Policy
			ref := SNPReference{Name: key + "." + e.Name, Measurement: pins.Measurement, Policy: &policy, HostData: pins.HostData, MinimumTCB: doc.MinimumTCB, VMPL: &vmpl0}
			if id := pins.ID; id != nil {
				ref.IDKeyDigest, ref.AuthorKeyDigest = id.IDKeyDigest, id.AuthorKeyDigest
				ref.FamilyID, ref.ImageID, ref.MinimumGuestSVN = id.FamilyID, id.ImageID, &id.GuestSVN
			}
			refs = append(refs, ref)
		}
	}
	return refs, nil
}

// TDXReferences turns a release's TDX measurement documents
// (measurements/tdx-NAME.json) into the references MatchTDX compares with,
// in name order, with their documents (for the event-log replay).
func TDXReferences(r *refvalues.Release) ([]TDXReference, []*refvalues.TDX, error) {
	var refs []TDXReference
	var docs []*refvalues.TDX
	for _, key := range sortedKeys(r.TDX, "tdx-") {
		doc, f := r.TDX[key], refvalues.MeasurementsDir+"/"+key+".json"
		ref := TDXReference{Name: key}
		for _, m := range doc.MRTD {
			v, err := hex.DecodeString(m.Value)
			if err != nil {
				return nil, nil, outcome.InputError(fmt.Errorf("%s: mrtd: %w", f, err))
			}
			ref.MRTD, ref.PageOrders = append(ref.MRTD, v), append(ref.PageOrders, m.PageOrder)
		}
		for i, v := range doc.RTMR {
			if v != nil {
				var err error
				if ref.RTMR[i], err = hex.DecodeString(*v); err != nil {
					return nil, nil, outcome.InputError(fmt.Errorf("%s: rtmr%d: %w", f, i, err))
				}
			}
		}
		for _, nc := range doc.NotComputed {
			if nc.RTMR >= 0 && nc.RTMR < 4 {
				ref.NotComputed[nc.RTMR] = nc.Reason
			}
		}
		if doc.XFAM != "" {
			x, err := strconv.ParseUint(doc.XFAM, 0, 64)
			if err != nil {
				return nil, nil, outcome.InputError(fmt.Errorf("%s: xfam %q: %w", f, doc.XFAM, err))
			}
			ref.XFAM = &x
		}
		refs = append(refs, ref)
		docs = append(docs, doc)
	}
	return refs, docs, nil
}

func sortedKeys[T any](m map[string]T, prefix string) []string {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
