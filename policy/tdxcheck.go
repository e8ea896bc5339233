package policy

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/cvmkit/cvmkit/refvalues"

	ccpb "github.com/google/go-tdx-guest/proto/checkconfig"
)

// TDXCheck are the values of one TDX launch configuration that a
// go-tdx-guest policy pins.
type TDXCheck struct {
	// MRTD is the 48-byte TD measurement for one page order.
	MRTD []byte
	// RTMRs holds RTMR0..3; a nil entry is not checked (a value cvmkit
	// could not compute from the release inputs).
	RTMRs [4][]byte
}

// TDXCheckConfig returns the go-tdx-guest checkconfig.Config for v, as
// `check -config` and validate.PolicyToOptions consume it. go-tdx-guest
// v0.3.1 takes one MRTD per policy, so a release writes one per page-order
// candidate; TD attributes, XFAM, MRSEAM and TCB minimums are the
// operator's to add.
func TDXCheckConfig(v TDXCheck) (*ccpb.Config, error) {
	if len(v.MRTD) != 48 {
		return nil, fmt.Errorf("MRTD has %d bytes, want 48", len(v.MRTD))
	}
	body := &ccpb.TDQuoteBodyPolicy{MrTd: v.MRTD, Rtmrs: make([][]byte, 4)}
	for i, r := range v.RTMRs {
		if r != nil && len(r) != 48 {
			return nil, fmt.Errorf("RTMR%d has %d bytes, want 48", i, len(r))
		}
		body.Rtmrs[i] = r
		if r == nil {
			body.Rtmrs[i] = []byte{} // go-tdx-guest skips an empty entry
		}
	}
	return &ccpb.Config{Policy: &ccpb.Policy{TdQuoteBodyPolicy: body}}, nil
}

// TDXCheckFiles are a TDX document's go-tdx-guest policies, one per MRTD
// candidate (tdx-ORDER.binpb, .textproto), and its values as canonical JSON
// (tdx-values.json).
func TDXCheckFiles(res *refvalues.TDX) (map[string][]byte, error) {
	var rtmrs [4][]byte
	for i, r := range res.RTMR {
		if r != nil {
			rtmrs[i], _ = hex.DecodeString(*r)
		}
	}
	// The values themselves as canonical JSON (RFC 8785: sorted keys, no
	// whitespace; every value is ASCII hex or null), for consumers that pin
	// them without go-tdx-guest.
	values := map[string]any{"edk2_profile": res.Profile}
	mrtds := map[string]string{}
	for _, m := range res.MRTD {
		mrtds[m.PageOrder] = m.Value
	}
	values["mrtd"] = mrtds
	for i, r := range res.RTMR {
		values[fmt.Sprintf("rtmr%d", i)] = r
	}
	canonical, err := json.Marshal(values)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"tdx-values.json": canonical}
	for _, m := range res.MRTD {
		mrtd, _ := hex.DecodeString(m.Value)
		if err := addTDXCheck(files, "tdx-"+m.PageOrder, "tdx "+m.PageOrder, TDXCheck{MRTD: mrtd, RTMRs: rtmrs}); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// addTDXCheck adds FILE.binpb and FILE.textproto of the go-tdx-guest policy
// c (the text form's comment names it) to files.
func addTDXCheck(files map[string][]byte, file, comment string, c TDXCheck) error {
	cfg, err := TDXCheckConfig(c)
	if err != nil {
		return err
	}
	return addEncoded(files, file, comment, cfg)
}
