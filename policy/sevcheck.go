package policy

import (
	"fmt"
	"strings"

	checkpb "github.com/google/go-sev-guest/proto/check"
	ccpb "github.com/google/go-tdx-guest/proto/checkconfig"
	"google.golang.org/protobuf/proto"

	"github.com/cvmkit/cvmkit/internal/textpb"
	"github.com/cvmkit/cvmkit/refvalues"
)

// SEVCheckConfig returns the go-sev-guest check.Config (proto/check) for v,
// as `check -config` and validate.PolicyToOptions consume it. Only the
// launch values are set; TCB minimums and the root of trust are the
// operator's to add.
func SEVCheckConfig(v refvalues.SNPPins) (*checkpb.Config, error) {
	if len(v.Measurement) != 48 {
		return nil, fmt.Errorf("SEV-SNP measurement has %d bytes, want 48", len(v.Measurement))
	}
	p := &checkpb.Policy{Measurement: v.Measurement, Policy: v.Policy}
	if v.HostData != nil {
		if len(v.HostData) != 32 {
			return nil, fmt.Errorf("HOST_DATA has %d bytes, want 32", len(v.HostData))
		}
		p.HostData = v.HostData
	}
	if id := v.ID; id != nil {
		if len(id.FamilyID) != 16 || len(id.ImageID) != 16 || len(id.IDKeyDigest) != 48 {
			return nil, fmt.Errorf("an ID block needs a 16-byte family ID, a 16-byte image ID and a 48-byte ID key digest")
		}
		p.FamilyId, p.ImageId, p.MinimumGuestSvn = id.FamilyID, id.ImageID, id.GuestSVN
		p.RequireIdBlock = true
		p.TrustedIdKeyHashes = [][]byte{id.IDKeyDigest}
		if id.AuthorKeyDigest != nil {
			p.RequireAuthorKey = true
			p.TrustedAuthorKeyHashes = [][]byte{id.AuthorKeyDigest}
		}
	}
	return &checkpb.Config{Policy: p}, nil
}

// Encode returns a config as deterministic binary protobuf (what `check
// -config x.binpb` reads) and as text format (x.textproto) for people. The
// text form starts with comments naming the configuration and giving the
// byte fields in hex, which the text format can only write as escaped
// strings.
func Encode(m proto.Message, name string) (binpb, text []byte, err error) {
	binpb, err = proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# cvmkit: configuration %s\n", name)
	switch c := m.(type) {
	case *checkpb.Config:
		p := c.GetPolicy()
		fmt.Fprintf(&b, "# policy: %#x\n", p.GetPolicy())
		fmt.Fprintf(&b, "# measurement: %x\n", p.GetMeasurement())
		if h := p.GetHostData(); len(h) > 0 {
			fmt.Fprintf(&b, "# host_data: %x\n", h)
		}
		for _, k := range p.GetTrustedIdKeyHashes() {
			fmt.Fprintf(&b, "# trusted_id_key_hash: %x\n", k)
		}
		for _, k := range p.GetTrustedAuthorKeyHashes() {
			fmt.Fprintf(&b, "# trusted_author_key_hash: %x\n", k)
		}
	case *ccpb.Config:
		body := c.GetPolicy().GetTdQuoteBodyPolicy()
		fmt.Fprintf(&b, "# mr_td: %x\n", body.GetMrTd())
		for i, r := range body.GetRtmrs() {
			if len(r) == 0 {
				fmt.Fprintf(&b, "# rtmr%d: not checked\n", i)
			} else {
				fmt.Fprintf(&b, "# rtmr%d: %x\n", i, r)
			}
		}
	}
	return binpb, append([]byte(b.String()), textpb.Marshal(m)...), nil
}

// SEVCheckFiles are NAME.binpb and NAME.textproto of the go-sev-guest
// policy c, as 'measure snp --sev-check-dir' and the sev-check target
// write them.
func SEVCheckFiles(name string, c refvalues.SNPPins) (map[string][]byte, error) {
	files := map[string][]byte{}
	return files, addSEVCheck(files, name, c)
}

func addSEVCheck(files map[string][]byte, name string, c refvalues.SNPPins) error {
	cfg, err := SEVCheckConfig(c)
	if err != nil {
		return err
	}
	return addEncoded(files, name, name, cfg)
}

// addEncoded adds FILE.binpb and FILE.textproto of a check policy.
func addEncoded(files map[string][]byte, file, comment string, m proto.Message) error {
	bin, text, err := Encode(m, comment)
	if err != nil {
		return err
	}
	files[file+".binpb"], files[file+".textproto"] = bin, text
	return nil
}
