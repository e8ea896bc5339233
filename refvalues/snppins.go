package refvalues

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
)

// DefaultSNPPolicy is the guest policy of a document that names none
// (QEMU's default, 0x30000).
const DefaultSNPPolicy = 0x30000

// SNPPins is what a measured SEV-SNP configuration pins: the one rule that
// measure snp's go-sev-guest policies, a release's key-authority policies
// (sev-check, Trustee) and cvmkit check snp all follow, so that a report
// one of them accepts the others accept too.
type SNPPins struct {
	Measurement []byte
	// Policy is the guest policy (DefaultSNPPolicy when the document
	// names none).
	Policy uint64
	// HostData is nil when the configuration sets no HOST_DATA.
	HostData []byte
	// ID is set when the configuration launches with an ID block.
	ID *SNPIDPins
}

// SNPIDPins are the ID block's values every report of the VM carries
// (SEV-SNP ABI spec table 74, ID_BLOCK; table 23, the report's FAMILY_ID,
// IMAGE_ID, GUEST_SVN, ID_KEY_DIGEST and AUTHOR_KEY_DIGEST).
type SNPIDPins struct {
	FamilyID, ImageID []byte
	GuestSVN          uint32
	IDKeyDigest       []byte
	// AuthorKeyDigest is nil without an author key.
	AuthorKeyDigest []byte
}

// Pins returns what configuration e of the document pins. where names the
// document in errors.
func (d *SNP) Pins(e SNPEntry, where string) (SNPPins, error) {
	bad := func(what string, err error) (SNPPins, error) {
		return SNPPins{}, fmt.Errorf("%s: %s: %s: %w", where, e.Name, what, err)
	}
	p := SNPPins{Policy: DefaultSNPPolicy}
	var err error
	if p.Measurement, err = hexN(e.Digest, 48); err != nil {
		return bad("digest", err)
	}
	if d.Policy != "" {
		if p.Policy, err = strconv.ParseUint(d.Policy, 0, 64); err != nil {
			return bad("policy", err)
		}
	}
	if d.HostData != "" {
		if p.HostData, err = hexN(d.HostData, 32); err != nil {
			return bad("host_data", err)
		}
	}
	if e.IDBlock == "" {
		return p, nil
	}
	// ID_BLOCK: LD[48], FAMILY_ID[16] at 0x30, IMAGE_ID[16] at 0x40,
	// VERSION u32 at 0x50, GUEST_SVN u32 at 0x54, POLICY u64 at 0x58.
	b, err := base64.StdEncoding.DecodeString(e.IDBlock)
	if err != nil || len(b) != 0x60 {
		return bad("id_block", fmt.Errorf("want 96 bytes of base64 (the SEV-SNP ID block)"))
	}
	id := &SNPIDPins{FamilyID: b[0x30:0x40], ImageID: b[0x40:0x50], GuestSVN: binary.LittleEndian.Uint32(b[0x54:])}
	if id.IDKeyDigest, err = hexN(e.IDKeyDigest, 48); err != nil {
		return bad("id_key_digest", err)
	}
	if e.AuthorKeyDigest != "" {
		if id.AuthorKeyDigest, err = hexN(e.AuthorKeyDigest, 48); err != nil {
			return bad("author_key_digest", err)
		}
	}
	p.ID = id
	return p, nil
}

func hexN(s string, n int) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("want %d bytes of hex", n)
	}
	return b, nil
}
