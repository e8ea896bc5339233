package evidence

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// snpSeeds are real SEV-SNP evidence (go-sev-guest's report, raw and as
// Attestation protobufs with its VCEK) and mutations of its fields.
func snpSeeds(t testing.TB) [][]byte {
	report, vcek := realSNP(t)
	seeds := [][]byte{report, make([]byte, len(report)), []byte("report: {}")}
	att, err := ParseSNPReport(report)
	if err != nil {
		t.Fatal(err)
	}
	att.CertificateChain = &spb.CertificateChain{VcekCert: vcek}
	if b, err := proto.Marshal(att); err == nil {
		seeds = append(seeds, b, b[:len(b)/2])
	}
	if b, err := prototext.Marshal(att); err == nil {
		seeds = append(seeds, b)
	}
	// Version, guest SVN, policy, signature algorithm, signer info, the
	// signature's first byte: each set to 0 and to all ones.
	for _, off := range []int{0, 4, 8, 0x34, 0x48, 0x2a0} {
		for _, v := range []byte{0, 0xff} {
			m := append([]byte(nil), report...)
			m[off] = v
			seeds = append(seeds, m)
		}
	}
	return append(seeds, report[:len(report)-1], append(append([]byte(nil), report...), 0))
}

// tdxSeeds are go-tdx-guest's real quote and mutations of every length
// field of its nested layout (see checkQuoteV4Layout): 0, small, one short,
// one long, and the largest value.
func tdxSeeds(t testing.TB) [][]byte {
	q := realTDXQuote(t)
	seeds := [][]byte{q, q[:quoteSignedDataAt], q[:len(q)-1], {4, 0, 2, 0, 0x81, 0, 0, 0}}
	type field struct {
		at    int
		width int
	}
	sd := quoteSignedDataAt
	cd := sd + quoteSigAndKeySize
	auth := cd + certDataHeaderSize + qeReportSize + qeReportSigSize
	authLen := int(binary.LittleEndian.Uint16(q[auth:]))
	pck := auth + 2 + authLen
	for _, f := range []field{{sd - 4, 4}, {cd + 2, 4}, {auth, 2}, {pck + 2, 4}, {cd, 2}, {pck, 2}, {0, 2}} {
		var orig uint32
		if f.width == 2 {
			orig = uint32(binary.LittleEndian.Uint16(q[f.at:]))
		} else {
			orig = binary.LittleEndian.Uint32(q[f.at:])
		}
		for _, v := range []uint32{0, 1, 64, 133, 134, orig - 1, orig + 1, 0xffff, 0xffffffff} {
			m := append([]byte(nil), q...)
			if f.width == 2 {
				binary.LittleEndian.PutUint16(m[f.at:], uint16(v))
			} else {
				binary.LittleEndian.PutUint32(m[f.at:], v)
			}
			seeds = append(seeds, m)
		}
	}
	if pq, err := ParseTDXQuote(q); err == nil {
		if b, err := proto.Marshal(pq); err == nil {
			seeds = append(seeds, b, b[:len(b)/2])
		}
	}
	return seeds
}

// FuzzParseSNPReport: any bytes, as a report file; parsed reports are
// matched and verified without panicking.
func FuzzParseSNPReport(f *testing.F) {
	for _, s := range snpSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		att, err := ParseSNPReport(b)
		if err != nil {
			return
		}
		MatchSNP(att.GetReport(), []SNPReference{{Name: "x", Measurement: make([]byte, 48)}}, []byte{1})
		_ = VerifySNP(context.Background(), att, SNPOptions{At: time.Unix(1700000000, 0)})
	})
}

// FuzzParseTDXQuote: any bytes, as a quote file.
func FuzzParseTDXQuote(f *testing.F) {
	for _, s := range tdxSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseTDXQuote(b)
		if err != nil {
			return
		}
		MatchTDX(q, []TDXReference{{Name: "x", MRTD: [][]byte{make([]byte, 48)}}}, []byte{1})
		_ = VerifyTDX(context.Background(), q, TDXOptions{At: time.Unix(1700000000, 0)})
	})
}

// TestHostileQuoteLayout: every seed mutation of the quote's lengths is
// refused as malformed or parsed; none panics (go-tdx-guest's parser did
// for a signed-data size of 0–133).
func TestHostileQuoteLayout(t *testing.T) {
	q := realTDXQuote(t)
	for n := uint32(0); n <= 140; n++ {
		m := append([]byte(nil), q...)
		binary.LittleEndian.PutUint32(m[quoteSignedDataAt-4:], n)
		if _, err := ParseTDXQuote(m); err == nil {
			t.Fatalf("signed-data size %d parsed", n)
		}
	}
	for _, s := range tdxSeeds(t) {
		ParseTDXQuote(s)
	}
}
