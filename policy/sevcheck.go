package policy

import (
	"fmt"

	checkpb "github.com/google/go-sev-guest/proto/check"
	"google.golang.org/protobuf/proto"

	"github.com/cvmkit/cvmkit/internal/textpb"
)

// SEVCheck are the values of one SEV-SNP launch configuration that a
// go-sev-guest policy pins.
type SEVCheck struct {
	// Measurement is the 48-byte launch digest.
	Measurement []byte
	// Policy is the guest policy the VM is launched with; go-sev-guest
	// rejects a report whose policy is more permissive (debug, migration,
	// SMT, ABI version).
	Policy uint64
	// HostData, when set, is the 32-byte HOST_DATA the host supplies.
	HostData []byte
	// With an ID block: its family and image IDs, guest SVN and the digests
	// of the ID key and (optional) author key.
	IDBlock         bool
	FamilyID        []byte
	ImageID         []byte
	GuestSVN        uint32
	IDKeyDigest     []byte
	AuthorKeyDigest []byte
}

// SEVCheckConfig returns the go-sev-guest check.Config (proto/check) for v,
// as `check -config` and validate.PolicyToOptions consume it. Only the
// launch values are set; TCB minimums and the root of trust are the
// operator's to add.
func SEVCheckConfig(v SEVCheck) (*checkpb.Config, error) {
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
	if v.IDBlock {
		if len(v.FamilyID) != 16 || len(v.ImageID) != 16 || len(v.IDKeyDigest) != 48 {
			return nil, fmt.Errorf("an ID block needs a 16-byte family ID, a 16-byte image ID and a 48-byte ID key digest")
		}
		p.FamilyId, p.ImageId, p.MinimumGuestSvn = v.FamilyID, v.ImageID, v.GuestSVN
		p.RequireIdBlock = true
		p.TrustedIdKeyHashes = [][]byte{v.IDKeyDigest}
		if v.AuthorKeyDigest != nil {
			p.RequireAuthorKey = true
			p.TrustedAuthorKeyHashes = [][]byte{v.AuthorKeyDigest}
		}
	}
	return &checkpb.Config{Policy: p}, nil
}

// Encode returns a config as deterministic binary protobuf (what `check
// -config x.binpb` reads) and as text format (x.textproto) for people.
func Encode(m proto.Message) (binpb, text []byte, err error) {
	binpb, err = proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	return binpb, textpb.Marshal(m), nil
}
