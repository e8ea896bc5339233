package policy

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/refvalues"
)

func TestSEVCheckConfig(t *testing.T) {
	m := bytes.Repeat([]byte{0xab}, 48)
	cfg, err := SEVCheckConfig(refvalues.SNPPins{Measurement: m, Policy: 0x30000})
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.GetPolicy()
	if !bytes.Equal(p.Measurement, m) || p.Policy != 0x30000 || p.RequireIdBlock || p.FamilyId != nil {
		t.Errorf("without an ID block: %v", p)
	}
	cfg, err = SEVCheckConfig(refvalues.SNPPins{Measurement: m, Policy: 0x30000, HostData: make([]byte, 32),
		ID: &refvalues.SNPIDPins{FamilyID: make([]byte, 16), ImageID: make([]byte, 16), GuestSVN: 2, IDKeyDigest: m, AuthorKeyDigest: m}})
	if err != nil {
		t.Fatal(err)
	}
	p = cfg.GetPolicy()
	if !p.RequireIdBlock || !p.RequireAuthorKey || p.MinimumGuestSvn != 2 || len(p.TrustedIdKeyHashes) != 1 || len(p.HostData) != 32 {
		t.Errorf("with an ID block: %v", p)
	}
	bin1, text1, err := Encode(cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	bin2, text2, _ := Encode(cfg, "test")
	if !bytes.Equal(bin1, bin2) || !bytes.Equal(text1, text2) {
		t.Error("encoding is not deterministic")
	}
	for name, v := range map[string]refvalues.SNPPins{
		"short measurement": {Measurement: m[:47]},
		"short host data":   {Measurement: m, HostData: []byte{1}},
		"id block w/o key":  {Measurement: m, ID: &refvalues.SNPIDPins{FamilyID: make([]byte, 16), ImageID: make([]byte, 16)}},
	} {
		if _, err := SEVCheckConfig(v); err == nil || !strings.Contains(err.Error(), "byte") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
