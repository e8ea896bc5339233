package evidence

import (
	"context"
	"testing"
	"time"
)

// FuzzParseSNPReport: any bytes, as a report file; parsed reports are
// matched and verified without panicking.
func FuzzParseSNPReport(f *testing.F) {
	f.Add(make([]byte, 1184))
	f.Add([]byte("report: {}"))
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
	f.Add([]byte{4, 0, 2, 0, 0x81, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseTDXQuote(b)
		if err != nil {
			return
		}
		MatchTDX(q, []TDXReference{{Name: "x", MRTD: [][]byte{make([]byte, 48)}}}, []byte{1})
		_ = VerifyTDX(context.Background(), q, TDXOptions{At: time.Unix(1700000000, 0)})
	})
}
