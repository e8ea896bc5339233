package policy

import (
	"fmt"

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
