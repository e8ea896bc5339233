package policy

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cvmkit/cvmkit/refvalues"
)

// idRelease is a release whose one SEV-SNP configuration launches with an
// ID block (family and image IDs, guest SVN 3) and ID and author keys.
func idRelease() *refvalues.Release {
	block := make([]byte, 0x60)
	copy(block[0x30:], bytes.Repeat([]byte{0xf1}, 16))
	copy(block[0x40:], bytes.Repeat([]byte{0x1d}, 16))
	binary.LittleEndian.PutUint32(block[0x50:], 1)
	binary.LittleEndian.PutUint32(block[0x54:], 3)
	return &refvalues.Release{Name: "ids@1", SNP: map[string]*refvalues.SNP{"snp-q": {
		Mode: "snp", Policy: "0x30000", HostData: strings.Repeat("ab", 32),
		Measurements: []refvalues.SNPEntry{{Name: "qemu-EPYC-v4-1vcpu", Digest: strings.Repeat("11", 48),
			IDBlock: base64.StdEncoding.EncodeToString(block), IDKeyDigest: strings.Repeat("22", 48), AuthorKeyDigest: strings.Repeat("33", 48)}},
	}}}
}

// TestSEVCheckPinsTheIDBlock: one rule (refvalues.SNP.Pins) decides what a
// configuration pins, so a release's sev-check policy pins the ID block's
// values and key digests as measure snp's and check snp do; before, it
// pinned only the measurement, policy and HOST_DATA.
func TestSEVCheckPinsTheIDBlock(t *testing.T) {
	rel := idRelease()
	out, err := Render(rel, "sev-check", RenderOptions{AllowUnbound: true})
	if err != nil {
		t.Fatal(err)
	}
	var text string
	for n, b := range out.Files {
		if strings.HasSuffix(n, ".textproto") {
			text = string(b)
		}
	}
	for _, want := range []string{"require_id_block: true", "require_author_key: true", "minimum_guest_svn: 3",
		"# trusted_id_key_hash: " + strings.Repeat("22", 48), "# trusted_author_key_hash: " + strings.Repeat("33", 48), "# host_data: " + strings.Repeat("ab", 32)} {
		if !strings.Contains(text, want) {
			t.Errorf("the sev-check policy lacks %q:\n%s", want, text)
		}
	}
	doc := rel.SNP["snp-q"]
	pins, err := doc.Pins(doc.Measurements[0], "snp-q")
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(pins.ID.FamilyID) != strings.Repeat("f1", 16) || hex.EncodeToString(pins.ID.ImageID) != strings.Repeat("1d", 16) || pins.ID.GuestSVN != 3 {
		t.Fatalf("pins %+v", pins.ID)
	}
	doc.Measurements[0].IDBlock = "AAAA"
	if _, err := doc.Pins(doc.Measurements[0], "snp-q"); err == nil || !strings.Contains(err.Error(), "id_block") {
		t.Fatalf("a short ID block: %v", err)
	}
}
